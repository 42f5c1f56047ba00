# streamseg worker / simulator image.
#   docker build -t streamseg .
#   docker run --rm -e STREAMSEG_BROKER=kafka://broker:9092 streamseg            # worker
#   docker run --rm streamseg python -m streamseg check --offline                # settings, schemas
#   docker run --rm streamseg python -m streamseg simulate --to-kafka            # simulator
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Only what the install needs. The schemas and sample events are package data
# inside streamseg/. tests/packaging/test_wheel.py builds the wheel from exactly
# these COPY sources and runs it in a fresh venv (in CI), so keep them in step.
COPY requirements.lock pyproject.toml README.md ./
COPY streamseg ./streamseg
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps . \
    && cd / && rm -rf /src \
    && python -m streamseg check --offline >/dev/null

RUN useradd --create-home --uid 10001 streamseg \
    && mkdir -p /data && chown streamseg /data
USER streamseg
WORKDIR /home/streamseg

ENV STREAMSEG_BROKER=kafka://kafka:9092 \
    STREAMSEG_METRICS_PORT=9108 \
    STREAMSEG_DATA_DIR=/data
EXPOSE 9108 6066
VOLUME ["/data"]

CMD ["python", "-m", "streamseg", "worker"]
