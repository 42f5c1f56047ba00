"""Tools around the engine (no Faust, no Kafka): ``import`` of order files, ``quality`` reports."""
