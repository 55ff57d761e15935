# Stand-in for postgres:16-bookworm: Debian bookworm's PostgreSQL, which is 15. The
# entrypoint does what the official one does with POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB on an empty data directory (initdb, password auth over the network, the
# database), then runs postgres in the foreground as the postgres user.
ARG DEBIAN_IMAGE=ovcache-stand-in/debian:bookworm
FROM ${DEBIAN_IMAGE}
ENV PG_MAJOR=15
# The postgres user gets uid/gid 999 as in the official image (the package keeps a user
# it finds); no cluster from the package's scripts: the entrypoint makes one in PGDATA.
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && install -d /etc/postgresql-common \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
    && install -d -o postgres -g postgres -m 2775 /var/run/postgresql
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH} \
    PGDATA=/var/lib/postgresql/data
COPY --chmod=0755 stand-ins/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER 999:999
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
