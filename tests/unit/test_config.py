import pytest

from storeplatform import config


def test_required_setting_missing_names_it():
    with pytest.raises(config.ConfigError, match="K_SINK"):
        config.load({"K_SINK": config.REQUIRED}, environ={})


def test_override_beats_environment_beats_default():
    spec = {"A": "default", "B": "default", "C": "default"}
    loaded = config.load(spec, {"A": "override"}, environ={"A": "env", "B": "env"})
    assert loaded == {"A": "override", "B": "env", "C": "default"}


def test_numbers_are_converted_and_checked():
    assert config.load({"T": 5.0}, environ={"T": "2.5"}) == {"T": 2.5}
    with pytest.raises(config.ConfigError, match="T must be a number"):
        config.load({"T": 5}, environ={"T": "soon"})


def test_unknown_override_is_an_error():
    with pytest.raises(config.ConfigError, match="unknown setting"):
        config.load({"A": 1}, {"B": 2}, environ={})


def test_start_loads_the_settings_and_sets_up_logging(monkeypatch):
    levels = []
    monkeypatch.setattr(config, "setup_logging", levels.append)
    assert config.start({"LOG_LEVEL": "INFO", "A": 1}, {"LOG_LEVEL": "DEBUG"}) == {
        "LOG_LEVEL": "DEBUG", "A": 1}
    assert levels == ["DEBUG"]


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_the_body_loggers_never_log_below_warning(monkeypatch, level):
    """kubernetes.client.rest logs every response body at DEBUG, Secrets included."""
    import logging

    for name in config.BODY_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    config.start({"LOG_LEVEL": "INFO"}, {"LOG_LEVEL": level})
    logging.getLogger().setLevel(level)  # whatever the root says
    for name in config.BODY_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
