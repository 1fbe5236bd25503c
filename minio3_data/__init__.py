"""minio3_data: the library every minio3 stage shares (records, protocol, zoom, images, teachers, store).

It never imports torch, vllm or verl, so data work installs and runs anywhere.
"""

__version__ = "0.1.0"
