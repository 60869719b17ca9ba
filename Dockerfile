# The C.O.M.E.T. bot (also runs the config render step of docker-compose.yml).
# An exact tag: `python:3.11-slim` moves with every patch release and with Debian (it is trixie now);
# bookworm is the Debian release of the machines the tests and CI run on. Bump it on purpose.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a fixed uid/gid, so volume ownership is predictable.
RUN groupadd --system --gid 10001 comet \
 && useradd --system --uid 10001 --gid comet --home-dir /home/comet --create-home --shell /usr/sbin/nologin comet

WORKDIR /opt/comet
# Every dependency from the hash-pinned lock first (its own layer, rebuilt only when the lock changes),
# then the bot with --no-deps: the image gets exactly the versions the tests ran, never a newer
# release. The lock also pins the build backend (setuptools, wheel), hence --no-build-isolation, and
# PyYAML for the config render step (python -m comet.ops.render) that docker-compose.yml runs with
# this image; the bot itself does not need it.
COPY requirements.lock ./
RUN pip install --no-compile --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY instrumentation/ instrumentation/
COPY comet/ comet/
# The local Discord: the offline demo (what the bot runs without a token) imports it.
COPY discord_emulator/ discord_emulator/
RUN pip install --no-compile --no-deps --no-build-isolation . && rm -rf /opt/comet/build

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
