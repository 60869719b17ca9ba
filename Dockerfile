# The C.O.M.E.T. bot (also runs the config render step of docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a fixed uid/gid, so volume ownership is predictable.
RUN groupadd --system --gid 10001 comet \
 && useradd --system --uid 10001 --gid comet --home-dir /home/comet --create-home --shell /usr/sbin/nologin comet

WORKDIR /opt/comet
COPY pyproject.toml README.md ./
COPY instrumentation/ instrumentation/
COPY comet/ comet/
# PyYAML for the config render step (python -m comet.ops.render) that docker-compose.yml runs
# with this image; the bot itself does not need it.
RUN pip install --no-compile . "PyYAML>=6,<7" && rm -rf /opt/comet/build

# data/ (SQLite) and logs/ are volumes in docker-compose.yml: created here owned by the user, so a
# fresh named volume inherits that ownership. The render step writes to /rendered (a volume too).
RUN mkdir -p /home/comet/data /home/comet/logs /rendered \
 && chown -R comet:comet /home/comet /rendered

USER comet
WORKDIR /home/comet

# Metrics, /healthz and /readyz; bound to 127.0.0.1 unless COMET_METRICS_HOST says otherwise
# (docker-compose.yml sets 0.0.0.0 inside its network and does not publish the port).
EXPOSE 9108
CMD ["python", "-m", "comet", "run"]
