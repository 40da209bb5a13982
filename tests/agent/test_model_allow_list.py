"""Which models a request may run on the server's key, and the output cap every request sends."""

import pytest
from pydantic import SecretStr

from agent import ModelNotAllowed, Settings
from agent.models import chat_model


def test_the_allow_list_defaults_to_the_one_model():
    assert Settings.from_env({}).models == ("gpt-4.1-mini",)
    assert Settings.from_env({"AGENT_MODEL": "m1"}).models == ("m1",)
    assert Settings(model="m2").models == ("m2",)


def test_agent_models_is_read_and_the_first_is_the_default():
    settings = Settings.from_env({"AGENT_MODELS": " m1, m2 ,,", "AGENT_MAX_OUTPUT_TOKENS": "300"})
    assert (settings.models, settings.model, settings.max_output_tokens) == (("m1", "m2"), "m1", 300)
    assert Settings.from_env({"AGENT_MODELS": "m1,m2", "AGENT_MODEL": "m2"}).model == "m2"


def test_a_default_model_outside_the_list_is_a_configuration_error():
    with pytest.raises(ValueError, match="AGENT_MODELS"):
        Settings.from_env({"AGENT_MODELS": "m1", "AGENT_MODEL": "o1-pro"})


def test_on_the_server_key_only_listed_models_run():
    server = Settings(api_key=SecretStr("sk-server"), model="m1", models=("m1", "m2"))
    assert server.for_request(model="m2").model == "m2"
    with pytest.raises(ModelNotAllowed, match="'o1-pro' is not available on this server's key"):
        server.for_request(model="o1-pro")
    with pytest.raises(ModelNotAllowed) as refused:
        server.for_request(model="x" * 100_000)
    assert len(str(refused.value)) < 300


def test_a_visitor_key_runs_any_model_and_offline_has_nothing_to_refuse():
    server = Settings(api_key=SecretStr("sk-server"), model="m1")
    assert server.for_request(api_key="sk-mine", model="o1-pro").model == "o1-pro"
    assert Settings().for_request(model="o1-pro").offline


def test_every_request_caps_its_output():
    assert chat_model(Settings(api_key=SecretStr("sk-a"))).max_tokens == 1024
    assert chat_model(Settings(api_key=SecretStr("sk-a"), max_output_tokens=50)).max_tokens == 50
