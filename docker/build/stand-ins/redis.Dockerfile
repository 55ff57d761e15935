# Stand-in for redis:7.2-bookworm: Debian bookworm's redis-server (7.0), run as the
# redis user in /data like the official image. The compose file passes its own command
# line (--requirepass), so no configuration file is used: Redis's built-in defaults.
ARG DEBIAN_IMAGE=ovcache-stand-in/debian:bookworm
FROM ${DEBIAN_IMAGE}
# The redis user gets uid/gid 999 as in the official image (the package keeps a user it finds).
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /var/lib/redis --shell /usr/sbin/nologin redis \
    && apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o redis -g redis -m 0755 /data
WORKDIR /data
USER 999:999
EXPOSE 6379
CMD ["redis-server"]
