"""bench/cost.py's batch-job arithmetic against sums done by hand from PRICES: a million images
in batches (the batch function, a state transition and an Express child per batch, S3's GET per
image, PUT per batch and LIST per 1,000 keys) and one per HTTP API request."""

from __future__ import annotations

import math

import pytest

from bench import cost


def test_a_million_images_in_batches_of_100_cost_what_the_price_list_says():
    prices = cost.PRICES
    batches = 10_000
    billed = math.ceil(300 * 1769 / 1024)  # 300 ms here at 1,024 MB: 519 ms billed
    lambda_usd = batches * (0.20 / 1e6 + 1.0 * billed / 1000 * prices["lambda_arm64_gb_second"])
    express = 1.00 / 1e6 + 0.6 * 64 / 1024 * prices["sfn_express_gb_second"]  # 519 ms -> 0.6 s
    sfn_usd = batches * (prices["sfn_standard_state_transition"] + express)
    s3_usd = 1_000_000 * 0.0004 / 1000 + (batches + 1000) * 0.005 / 1000
    got = cost.batch_per_million_images(300, 100, 1024)
    assert got["lambda"] == pytest.approx(lambda_usd, abs=1e-4)
    assert got["step_functions"] == pytest.approx(sfn_usd, abs=1e-4)
    assert got["s3"] == pytest.approx(s3_usd, abs=1e-4)
    assert got["total"] == pytest.approx(lambda_usd + sfn_usd + s3_usd, abs=1e-4)


def test_larger_batches_pay_fewer_children_the_same_gets():
    small, large = (cost.batch_per_million_images(3.0 * n, n, 1024) for n in (10, 1000))
    assert large["step_functions"] < small["step_functions"] / 50
    assert large["s3"] == pytest.approx(0.40 + 0.005 * 2, abs=1e-3)  # a GET per image remains


def test_one_image_per_http_api_request():
    got = cost.api_per_million_images(1.0, 1024, 456)
    assert got["http_api"] == pytest.approx(1.00)  # one request unit: under 512 KB
    billed_gb_s = math.ceil(1.0 * 1769 / 1024) / 1000
    expected = 0.20 + 1e6 * billed_gb_s * cost.PRICES["lambda_arm64_gb_second"]
    assert got["lambda"] == pytest.approx(expected, abs=1e-4)
    assert cost.api_per_million_images(1.0, 1024, 600 * 1024)["http_api"] == pytest.approx(2.00)
