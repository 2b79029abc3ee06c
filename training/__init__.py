"""The offline training job: train, quantize to TFLite, verify with LiteRT, publish to S3."""
