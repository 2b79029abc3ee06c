"""The model contract shared by training, the Lambda functions and the benchmarks.

numpy (and LiteRT for the predictor) only: no TensorFlow, no boto3. The functions ship a copy
of this package (functions/*/Makefile); training, bench and the tests import it from the
repository (an editable install made by `make setup`).

- ``registry``: where a model's files live on S3, the model-name and version rules, the pointer.
- ``tensors``: quantize/dequantize with a tensor's own scale and zero point; tensor specs.
- ``predictor``: the LiteRT interpreter behind one lock, what the function serves with and the
  training job's accuracy gate evaluates with.
"""
