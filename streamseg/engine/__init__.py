"""The engine: plain synchronous Python, no Faust, no Kafka.

event -> validate -> features -> segmenters -> changes -> emit
"""
