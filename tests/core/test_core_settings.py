import pytest

from nexus.core.errors import ConfigError, StorageError
from nexus.core.settings import load_settings
from nexus.store.db import check_data_dir, parse_database_url


def test_default_database_is_sqlite_in_data_dir():
    s = load_settings()
    assert s.resolved_database_url == "sqlite:///nexus-data/nexus.db"
    assert s.uses_default_sqlite


def test_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("NEXUS_DATABASE_URL", "postgresql://u:p@localhost/db")
    monkeypatch.setenv("NEXUS_PORT", "9000")
    monkeypatch.setenv("NEXUS_TRUSTED_PROXIES", " 10.0.0.1, 192.168.0.0/16,")
    s = load_settings()
    assert s.port == 9000
    assert s.proxies == ["10.0.0.1", "192.168.0.0/16"]
    assert parse_database_url(s.resolved_database_url).drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"NEXUS_PORT": "70000"}, "NEXUS_PORT"),
        ({"NEXUS_ENVIRONMENT": "staging"}, "NEXUS_ENVIRONMENT"),
        ({"NEXUS_ENVIRONMENT": "production"}, "NEXUS_SECRET_KEY"),
        ({"NEXUS_TRUSTED_PROXIES": "10.0.0.1,proxy.local"}, "NEXUS_TRUSTED_PROXIES: .*'proxy.local' is not an IP"),
    ],
    ids=["port-range", "unknown-environment", "unsafe-secret-in-production", "proxy-not-an-address"],
)
def test_invalid_settings_name_the_variable(monkeypatch, env, match):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=match):
        load_settings()


def test_production_accepts_a_strong_secret(monkeypatch):
    monkeypatch.setenv("NEXUS_ENVIRONMENT", "production")
    monkeypatch.setenv("NEXUS_SECRET_KEY", "x" * 40)
    assert load_settings().environment == "production"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "not a valid database URL"),
        ("foo://x/y", "unknown database kind"),
        ("sqlite://", "no SQLite"),
    ],
    ids=["garbage", "unknown-dialect", "sqlite-no-file"],
)
def test_malformed_database_url(url, match):
    with pytest.raises(ConfigError, match=match):
        parse_database_url(url)


def test_data_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StorageError, match="is a file"):
        check_data_dir(f, create=True)
    with pytest.raises(StorageError, match="cannot be created"):
        check_data_dir(f / "sub", create=True)
    assert f.read_text() == "x"
