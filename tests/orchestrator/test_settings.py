"""Settings come from the environment; production never falls back to insecure defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; from django.conf import settings; django.setup();"
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], 'broker': settings.CELERY_BROKER_URL,"
    "'layer': settings.CHANNEL_LAYERS['default']['BACKEND'], 'hosts': settings.ALLOWED_HOSTS,"
    "'embedded': settings.EMBEDDED}))"
)


def load(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY",
                                                                "ALLOWED_HOSTS")}
    base["DJANGO_SETTINGS_MODULE"] = "orchestrator.settings"
    base.update(env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=60)


class SettingsTests:
    def test_the_default_is_embedded_sqlite_with_in_memory_broker_and_layer(self, tmp_path: Path) -> None:
        result = load(DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3")
        assert result.returncode == 0, result.stderr
        assert '"engine": "django.db.backends.sqlite3"' in result.stdout
        assert '"broker": "memory://localhost/"' in result.stdout
        assert "InMemoryChannelLayer" in result.stdout
        assert '"embedded": true' in result.stdout

    def test_database_and_redis_urls_select_postgres_and_redis(self) -> None:
        result = load(DATABASE_URL="postgres://u@db.example:5432/lg", REDIS_URL="redis://cache.example:6379/2")
        assert result.returncode == 0, result.stderr
        assert "postgresql" in result.stdout
        assert '"broker": "redis://cache.example:6379/2"' in result.stdout
        assert "RedisChannelLayer" in result.stdout

    def test_debug_off_without_a_secret_key_fails_loudly(self) -> None:
        result = load(DEBUG="0", ALLOWED_HOSTS="example.com")
        assert result.returncode != 0
        assert "SECRET_KEY must be set" in result.stderr

    def test_debug_off_without_allowed_hosts_fails_loudly(self) -> None:
        result = load(DEBUG="0", SECRET_KEY="s" * 50)
        assert result.returncode != 0
        assert "ALLOWED_HOSTS must be set" in result.stderr

    def test_debug_off_without_redis_fails_unless_embedded_is_meant(self) -> None:
        result = load(DEBUG="0", SECRET_KEY="s" * 50, ALLOWED_HOSTS="loopgate.example.com")
        assert result.returncode != 0
        assert "REDIS_URL must be set when DEBUG is off" in result.stderr
        result = load(DEBUG="0", SECRET_KEY="s" * 50, ALLOWED_HOSTS="loopgate.example.com", LOOPGATE_EMBEDDED="1")
        assert result.returncode == 0, result.stderr
        assert '"embedded": true' in result.stdout

    def test_debug_off_with_everything_set_loads(self) -> None:
        result = load(DEBUG="0", SECRET_KEY="s" * 50, ALLOWED_HOSTS="loopgate.example.com",
                      REDIS_URL="redis://cache.example:6379/0")
        assert result.returncode == 0, result.stderr
        assert '"hosts": ["loopgate.example.com"]' in result.stdout

    def test_a_whsec_webhook_secret_must_be_base64(self, tmp_path: Path) -> None:
        sqlite = f"sqlite:///{tmp_path}/x.sqlite3"
        result = load(DATABASE_URL=sqlite, LOOPGATE_WEBHOOK_SECRET="whsec_not base64!")
        assert result.returncode != 0
        assert "LOOPGATE_WEBHOOK_SECRET starts with whsec_ but the rest is not base64" in result.stderr
        assert load(DATABASE_URL=sqlite, LOOPGATE_WEBHOOK_SECRET="whsec_a2V5LWJ5dGVz").returncode == 0

    def test_a_malformed_value_names_the_variable(self) -> None:
        result = load(DEBUG="maybe")
        assert result.returncode != 0
        assert "DEBUG must be a boolean" in result.stderr
        result = load(LOOPGATE_LEASE_SECONDS="soon")
        assert "LOOPGATE_LEASE_SECONDS must be a whole number" in result.stderr


def test_demo_users_with_the_well_known_password_are_refused_with_debug_off(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)}
    env.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", DEBUG="0", SECRET_KEY="s" * 50,
               ALLOWED_HOSTS="x.example", LOOPGATE_EMBEDDED="1", DATABASE_URL=f"sqlite:///{tmp_path}/d.sqlite3")
    run = lambda *a: subprocess.run([sys.executable, "manage.py", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert run("migrate", "--noinput").returncode == 0
    refused = run("setup_demo")
    assert refused.returncode != 0
    assert "need a password of your own" in refused.stderr
    assert run("setup_demo", "--password", "a-long-private-one").returncode == 0
