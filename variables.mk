# The project's make variables: the one list of them, each with its default and a line of help.
# `make help` prints it, the Makefile refuses a variable given on the command line that is not
# here (a misspelt `make train DATSET=...` fails, naming the closest one; variables from the
# environment are not checked), and the docs' configuration page is held to it by a test.
#
# Form (local/make_variables.py reads it): a `##@ heading` line starts a group; each variable
# is a `## help` line, then `NAME ?= default`. A variable without a default here is passed on
# only when it is set, so what it reaches decides (the training job's training/config.py, the
# template's parameters); its help then ends with `[default: ...]`, saying what that is.

##@ The model and its data (train, convert, report, publish, demo, local runs)
## the model: its artifact folder, registry prefix, TF Serving name and the function's ModelName; for local-api, names separated by commas (the first is the default) [default: mnist; local-api: every model under the prefix]
NAME ?=
## a built-in set (mnist-sample, mnist), a folder of class subfolders of images, an .npz, an IDX folder, or an s3:// URI of one [default: mnist-sample]
DATASET ?=
## a separate test set, in any form DATASET takes [default: held out from DATASET]
TEST_DATASET ?=
## HxW the images are resized to, e.g. 48x48 [default: the most common size found]
IMAGE_SIZE ?=
## rgb or grey [default: what the images are]
COLOR ?=
## how an image becomes an input: stretch, letterbox, center_crop, digit [default: digit for the digit sets, else stretch]
RESIZE ?=
## train on at most N examples, for quick runs [default: all]
LIMIT ?=
## share of DATASET held out for testing, when it has no test split of its own [default: 0.1]
TEST_FRACTION ?=
## the local artifact folder [default: artifacts]
ARTIFACTS ?=
## the version to write (train, convert) or to act on (report, publish, promote) [default: train: the UTC epoch second; others: the newest]
VERSION ?=

##@ Training (train, train-sagemaker, demo)
## cnn (three conv blocks), mobilenet (MobileNetV3-Small) or efficientnet (EfficientNetB0), pretrained backbones that take WEIGHTS, mlp (the seed's) or small_cnn (the previous default) [default: cnn]
ARCH ?=
## training-time augmentation: none, light or strong (random shifts, rotations, zoom, contrast), and flip for horizontal flips, e.g. light,flip; never in the served model [default: light; none for mnist-sample]
AUGMENT ?=
## most training epochs; early stopping on the validation loss ends most runs sooner [default: 100; 15 for mnist-sample]
EPOCHS ?=
## wall-clock budget of a training run in minutes: it stops before an epoch that would end past it, and says so [default: 30]
MAX_MINUTES ?=
## a backbone's starting weights: imagenet (Keras downloads them on first use into ~/.keras/models), none (random) or a .weights.h5 file [default: imagenet]
WEIGHTS ?=
## tf.distribute training: mirrored (this machine's devices) or multi-worker (TF_CONFIG) [default: one process]
DISTRIBUTE ?=
## int8, float16, dynamic or none [default: int8]
QUANTIZE ?=

##@ Gates (train, convert, publish)
## percent: refuse a model whose held-out accuracy is below it [default: refuse one whose 95% interval does not lie above the most common class's share]
MIN_ACCURACY ?=
## points the quantized model may lose against the float one; a drop of two test examples always may [default: 1.0]
MAX_ACCURACY_DROP ?=
## FORCE=1 keeps (train, convert) and publishes (publish) a model that failed its gate; the manifest records it [default: off]
FORCE ?=

##@ Your own model (convert, publish)
## a model file you bring: a .keras file or a SavedModel folder for convert, a .tflite for publish
MODEL ?=
## publish MODEL=...tflite: class names, one per line, for its output with one entry per name
LABELS ?=
## lo,hi: the values the model expects, e.g. -1,1 [default: 0,255]
INPUT_RANGE ?=
## per-channel mean on the 0..1 scale, RGB order, with STD, e.g. 0.485,0.456,0.406
MEAN ?=
## per-channel standard deviation on the 0..1 scale, with MEAN
STD ?=

##@ The registry (publish, promote, rollback, status, audit, demo, local runs)
## the registry bucket
BUCKET ?= serverless-ml-models
## the registry key prefix [default: models; the template's ModelPrefix for the local runs]
PREFIX ?=
## publish or report this artifact folder (publish: or a model.tar.gz of one)
ARTIFACT ?=
## publish as a canary taking this percent (1 to 99) of requests beside the served version
CANARY ?=
## REPAIR_POINTER=1: replace a latest.json that cannot be read (publish: by this version; promote: by VERSION; rollback: by the audit trail's last valid pointer)
REPAIR_POINTER ?=
## S3 Object Lock mode of a version's files, GOVERNANCE or COMPLIANCE [default: GOVERNANCE]
LOCK_MODE ?=
## days a version's files stay locked [default: 365]
LOCK_DAYS ?=
## SSE-KMS key for everything the publisher writes [default: none, SSE-S3]
KMS_KEY ?=
## KMS key (ECC_NIST_P256) that signs each version (model.sig) [default: $MANIFEST_SIGNING_KEY_ARN, else unsigned]
SIGNING_KEY ?=
## an AWS profile that assumes the stack's SignerRole (output SignerRoleArn): who signs, apart from who publishes (docs/security.md) [default: the publisher's credentials]
SIGNER_PROFILE ?=
## make audit: how many pointer changes to print [default: 10]
LAST ?=

##@ Local runs (demo, local-api, invoke, s3-local, events)
## the local S3's port on 127.0.0.1
S3_PORT ?= 4566
## the local API's port on 127.0.0.1
API_PORT ?= 3000
## the key the local API requires in x-api-key; make smoke sends it [default: generated]
API_KEY ?=
## template parameters "Key=Value ...", as sam's --parameter-overrides [default: the template's]
PARAMS ?=
## a sam --env-vars file for invoke and local-api
ENV_VARS ?=
## make invoke: the event file
EVENT ?= events/predict-instances.json
## make invoke: the function
FUNCTION ?= InferenceFunction
## SERVE=1: make demo keeps S3, the API and its page up until Ctrl-C
SERVE ?=
## RETRAIN=1: make demo trains a new model even when the newest one fits DATASET and passed its gate
RETRAIN ?=

##@ Deploy and check (deploy, smoke)
## the samconfig.toml environment: dev or prod
ENV ?= dev
## make smoke: the API's base URL
URL ?=
## make smoke: the API's certificate, when it is not publicly trusted
CA ?=
## SIGV4=1: make smoke signs every request with the standard AWS credentials (an API with IAM authorization)
SIGV4 ?=

##@ SageMaker (train-sagemaker)
## the IAM role SageMaker assumes [default: the SDK's lookup]
ROLE ?=
## instances (multi-worker: more than 1) [default: 1]
INSTANCES ?=
## the instance type [default: ml.m5.xlarge]
INSTANCE_TYPE ?=
## DRY_RUN=1: print the job it would start, start nothing
DRY_RUN ?=

##@ Jobs' data (batch, train-sagemaker)
## make batch: the s3://bucket/prefix/ whose every object a job answers
INPUT ?=
## the s3:// prefix a job writes its results to: batch's records and summary (in a folder per job), train-sagemaker's model.tar.gz [default: batch: required; train-sagemaker: the SDK's]
OUTPUT ?=

##@ Environments and tools (setup, test, lint)
## the Python that makes the environments
PYTHON ?= python3.11
## the project's virtual environment
VENV ?= .venv
## the Python 3.13 (Lambda's runtime) that makes .venv-function [default: pyenv's 3.13.0, else python3.13 on PATH]
LAMBDA_PYTHON ?=
## the functions' own environment on LAMBDA_PYTHON: the layer's pins and their tests' (no TensorFlow)
FUNCTION_VENV ?= .venv-function
## TracingMode otel's bench row: AWS's distribution of OpenTelemetry (its protobuf pin differs from .venv's)
OTEL_VENV ?= .venv-otel
## checkov's own environment (its pins conflict with .venv's)
CHECKOV_VENV ?= .venv-checkov
## the IAM linter's own environment (parliament; its pins conflict with .venv's)
IAMLINT_VENV ?= .venv-iamlint
## mutmut's own environment (make mutation; its click pin conflicts with aws-sam-cli's)
MUTMUT_VENV ?= .venv-mutmut
## KServe's SDK's own environment, the v2 protocol tests' client (its protobuf conflicts with .venv's)
KSERVE_VENV ?= .venv-kserve
## the SageMaker SDK's own environment (make setup-sagemaker)
SM_VENV ?= .venv-sagemaker
## make docs-serve: the documentation site's port on 127.0.0.1
DOCS_PORT ?= 8000
## the browser the page's test drives (Debian's chromium)
CHROMIUM ?= /usr/bin/chromium
## more pytest arguments for make test, test-slow and test-unit, e.g. "-k demo"
PYTEST_ARGS ?=
## make test's pytest-xdist workers, each taking whole test files
TEST_WORKERS ?= 2
