"""`make publish SIGNER_PROFILE=...`: the signature is made with the signer's identity (a
profile that assumes SignerRole), not with the publisher's credentials in the environment
(issue 27: the publisher alone cannot sign)."""

from __future__ import annotations

from training.cli import signer_kms


def test_the_signer_profile_signs_even_with_the_publishers_keys_in_the_environment(
    tmp_path, monkeypatch
):
    config = tmp_path / "config"
    config.write_text(
        "[profile registry-signer]\n"
        "aws_access_key_id = AKIASIGNERSIGNER0001\n"
        "aws_secret_access_key = signer-secret\n"
        "region = us-east-1\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPUBLISHER0000001")  # env publisher() sets
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "publisher-secret")
    kms = signer_kms("registry-signer")
    assert kms._request_signer._credentials.access_key == "AKIASIGNERSIGNER0001"
    assert signer_kms(None) is None  # publish then signs with the publishing credentials
