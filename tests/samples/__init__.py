"""Sample serving applications the tests warm for, standing for a team's own server code."""
