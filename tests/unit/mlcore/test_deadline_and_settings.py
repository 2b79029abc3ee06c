"""mlcore.deadline (one time limit shared by every step of an invocation) and mlcore.settings
(the registry location both functions read from their environment), on an injected clock."""

from types import SimpleNamespace

import pytest

from mlcore.deadline import Deadline
from mlcore.settings import LATEST, registry_location, required


class Clock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


def test_a_deadline_counts_down_on_its_clock_and_never_below_zero():
    clock = Clock()
    deadline = Deadline(2.5, clock)
    assert deadline.at == 102.5
    assert deadline.remaining() == 2.5 and not deadline.expired
    clock.now = 102.0
    assert deadline.remaining() == 0.5 and not deadline.expired
    clock.now = 102.5
    assert deadline.remaining() == 0.0 and deadline.expired  # expired at the instant itself
    clock.now = 110.0
    assert deadline.remaining() == 0.0 and deadline.expired
    assert repr(deadline) == "Deadline(remaining=0.000s)"


def test_a_negative_time_is_an_expired_deadline():
    clock = Clock()
    deadline = Deadline(-3, clock)
    assert deadline.at == 100.0 and deadline.expired and deadline.remaining() == 0.0


def test_an_invocations_deadline_is_its_remaining_time_minus_the_margin_at_most_the_cap():
    clock = Clock()
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: 7_500)
    deadline = Deadline.for_invocation(context, margin_seconds=0.5, cap_seconds=10, clock=clock)
    assert deadline.at == 107.0  # 7.5 s - 0.5 s
    capped = Deadline.for_invocation(context, margin_seconds=0.5, cap_seconds=3, clock=clock)
    assert capped.at == 103.0
    late = SimpleNamespace(get_remaining_time_in_millis=lambda: 200)
    assert Deadline.for_invocation(late, 0.5, 10, clock).expired


def test_without_an_invocation_the_cap_alone_applies():
    clock = Clock()
    assert Deadline.for_invocation(None, 0.5, 4, clock).at == 104.0
    not_callable = SimpleNamespace(get_remaining_time_in_millis=5_000)
    assert Deadline.for_invocation(not_callable, 0.5, 4, clock).at == 104.0


def test_the_default_clock_is_monotonic():
    deadline = Deadline(60)
    assert 59 < deadline.remaining() <= 60


ENVIRONMENT = {
    "MODEL_BUCKET": " models-bucket ",
    "MODEL_PREFIX": " /registry/v1/ ",
    "MODEL_NAME": " mnist ",
    "MODEL_VERSION": "0042",
}


def test_the_registry_location_is_read_trimmed_and_checked():
    assert registry_location(ENVIRONMENT) == {
        "bucket": "models-bucket",
        "prefix": "registry/v1",
        "model_name": "mnist",
        "model_names": ("mnist",),  # MODEL_NAMES unset: the one model
        "model_version": "42",
    }
    following = registry_location({**ENVIRONMENT, "MODEL_VERSION": LATEST})
    assert following["model_version"] == "latest"
    assert registry_location({**ENVIRONMENT, "MODEL_PREFIX": ""})["prefix"] == ""
    assert registry_location({**ENVIRONMENT, "MODEL_PREFIX": "/X/"})["prefix"] == "X"
    without_prefix = {k: v for k, v in ENVIRONMENT.items() if k != "MODEL_PREFIX"}
    assert registry_location(without_prefix)["prefix"] == ""  # the bucket's root


@pytest.mark.parametrize("name", ["MODEL_BUCKET", "MODEL_NAME", "MODEL_VERSION"])
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_a_missing_variable_is_named_with_where_it_comes_from(name, value):
    environment = {k: v for k, v in ENVIRONMENT.items() if k != name}
    if value is not None:
        environment[name] = value
    with pytest.raises(ValueError) as error:
        registry_location(environment)
    assert str(error.value) == (
        f"{name} is not set (template.yaml's Globals.Function.Environment sets it)"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MODEL_NAME", "../etc", "MODEL_NAME: model name '../etc': use 1 to 64 letters"),
        ("MODEL_VERSION", "v2", "MODEL_VERSION='v2': must be 'latest' or a positive integer"),
        ("MODEL_VERSION", "LATEST", "MODEL_VERSION='LATEST': must be 'latest' or a positive"),
        ("MODEL_VERSION", "١٢", "MODEL_VERSION='١٢': must be 'latest' or a positive integer"),
    ],
    ids=["name", "version-text", "version-upper-case", "version-arabic-indic"],
)
def test_a_wrong_variable_is_named_with_what_is_allowed(variable, value, message):
    with pytest.raises(ValueError) as error:
        registry_location({**ENVIRONMENT, variable: value})
    assert str(error.value).startswith(message)
    assert error.value.__suppress_context__  # the message says it all: no chained traceback


@pytest.mark.parametrize("value", ["-1", "¹", "٣", "3.0", "0x3", "2"])
def test_an_integer_setting_is_ascii_digits_at_least_its_minimum(value):
    from mlcore.settings import integer

    with pytest.raises(ValueError, match=f"N={value.strip()!r}: must be an integer >= 3"):
        integer({"N": value}, "N", 3)
    assert integer({"N": " 30 "}, "N", 3) == 30
    assert integer({"N": "3"}, "N", 3) == 3  # the minimum itself is allowed


def test_required_returns_the_trimmed_value():
    assert required({"X": "  a b  "}, "X") == "a b"


def test_model_names_add_to_the_default_or_name_every_model():
    from mlcore.settings import EVERY_MODEL, model_names

    assert model_names("", "mnist") == ("mnist",)  # one model, as before ModelNames
    assert model_names(" a, b ,mnist,a ", "mnist") == ("mnist", "a", "b")  # the default first
    assert model_names("*", "mnist") == (EVERY_MODEL,)
    assert model_names("a,, ,b,", "mnist") == ("mnist", "a", "b")  # empty entries skipped
    for wrong in ("a,b/c", "a,*", "-a"):
        with pytest.raises(ValueError, match="MODEL_NAMES"):
            model_names(wrong, "mnist")
    with pytest.raises(ValueError) as error:
        model_names("a,b/c", "mnist")
    assert str(error.value).startswith("MODEL_NAMES: ")
    assert str(error.value).endswith(
        f"; give names separated by commas, or {EVERY_MODEL} for every model under the prefix"
    )
