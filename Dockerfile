# streamseg worker / simulator image.
#   docker build -t streamseg .
#   docker run --rm -e STREAMSEG_BROKER=kafka://broker:9092 streamseg            # worker
#   docker run --rm streamseg python -m streamseg simulate --to-kafka            # simulator
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what `pip install .` needs (schemas and samples ship inside streamseg/).
COPY pyproject.toml README.md ./
COPY streamseg ./streamseg
RUN pip install . && rm -rf /app/build

RUN useradd --create-home --uid 10001 streamseg \
    && mkdir -p /data && chown streamseg /data
USER streamseg

ENV STREAMSEG_BROKER=kafka://kafka:9092 \
    STREAMSEG_METRICS_PORT=9108 \
    STREAMSEG_DATA_DIR=/data
EXPOSE 9108 6066
VOLUME ["/data"]

CMD ["python", "-m", "streamseg", "worker"]
