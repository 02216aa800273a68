"""Without decryption a SecureString reads as ciphertext, never as the value."""

import base64

from conftest import ACCOUNT, REGION, parameter_arn

SECRET = "hunter2-very-secret"


def put_secret(admin, name="/app/secret", value=SECRET, **extra):
    admin.ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True, **extra)


def test_secure_string_without_decryption_hides_plaintext(admin):
    put_secret(admin)
    value = admin.ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"]
    assert SECRET not in value and SECRET not in base64.b64decode(value).decode("latin-1")
    assert not value.startswith("kms:")


def test_every_read_hides_plaintext(admin):
    put_secret(admin)
    reads = [
        admin.ssm.get_parameters(Names=["/app/secret"])["Parameters"],
        admin.ssm.get_parameters_by_path(Path="/app")["Parameters"],
        admin.ssm.get_parameter_history(Name="/app/secret")["Parameters"],
    ]
    for parameters in reads:
        assert parameters and all(SECRET not in p["Value"] for p in parameters)


def test_ciphertext_is_stable_per_version(admin):
    put_secret(admin)
    first = admin.ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"]
    assert admin.ssm.get_parameters(Names=["/app/secret"])["Parameters"][0]["Value"] == first
    put_secret(admin, value="rotated")
    assert admin.ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"] != first
    assert admin.ssm.get_parameter(Name="/app/secret:1")["Parameter"]["Value"] == first


def test_ciphertext_decrypts_with_kms_under_the_parameter_arn_context(admin):
    key = admin.kms.create_key()["KeyMetadata"]
    put_secret(admin, KeyId=key["KeyId"])
    blob = base64.b64decode(admin.ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"])
    decrypted = admin.kms.decrypt(
        CiphertextBlob=blob, EncryptionContext={"PARAMETER_ARN": parameter_arn("/app/secret")}
    )
    assert decrypted["Plaintext"] == SECRET.encode()
    assert decrypted["KeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key['KeyId']}"


def test_ciphertext_for_a_missing_key_is_still_opaque(admin):
    put_secret(admin, KeyId="alias/nowhere")
    value = admin.ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"]
    assert SECRET not in base64.b64decode(value).decode("latin-1")
    assert admin.ssm.get_parameter(Name="/app/secret")["Parameter"]["Value"] == value


def test_plain_strings_are_untouched(admin):
    admin.ssm.put_parameter(Name="/app/plain", Value="visible", Type="String")
    assert admin.ssm.get_parameter(Name="/app/plain")["Parameter"]["Value"] == "visible"


def test_decryption_still_returns_the_value(admin):
    put_secret(admin)
    assert (
        admin.ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]["Value"]
        == SECRET
    )
