"""The one exception tree of ispeed.

    IspeedError
    ├── UsageError (ValueError)            bad flag/argument/config value → exit 2
    │   └── ConfigError                    a configuration key has a bad value
    ├── ValidationError (ValueError)       bad input to an API (→ HTTP 4xx), names the field
    ├── StoreError                         the store failed → exit 1
    │   ├── StoreUnavailable (ConnectionError)  cannot reach / open the store
    │   │   └── StoreLocked                an embedded store is held by another process
    │   └── MigrationError                 a migration could not be applied
    └── MeasurementError                   a speed test could not be completed → exit 1
        ├── ServerUnreachable (ConnectionError)
        └── ServerRefused                  the server answered 4xx/5xx; `status` says which

Every message says what failed, the bad value, and the next step.
"""

from __future__ import annotations


class IspeedError(Exception):
    """Base of every error ispeed raises on purpose."""

    exit_code = 1


class UsageError(IspeedError, ValueError):
    """A command-line argument or setting has a value that cannot work."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration key has a bad value."""

    def __init__(self, key: str, value: object, hint: str) -> None:
        self.key = key
        self.value = value
        super().__init__(f"{key} has value {value!r}: {hint}")


class ValidationError(IspeedError, ValueError):
    """Input to an API is malformed; ``field`` names the offending field, ``status`` the HTTP answer."""

    exit_code = 2

    def __init__(self, field: str, reason: str, status: int = 400) -> None:
        self.field = field
        self.reason = reason
        self.status = status
        super().__init__(f"{field}: {reason}")


class StoreError(IspeedError):
    """The store failed to run a statement."""


class StoreUnavailable(StoreError, ConnectionError):
    """The store cannot be reached or opened."""


class StoreLocked(StoreUnavailable):
    """An embedded (chDB) store path is held by another process."""

    exit_code = 2


class MigrationError(StoreError):
    """A versioned migration could not be applied."""


class MeasurementError(IspeedError):
    """A speed test could not be completed."""


class ServerUnreachable(MeasurementError, ConnectionError):
    """The test server did not answer."""


class ServerRefused(MeasurementError):
    """The test server answered with an HTTP error; 4xx are final, 408, 429 and 5xx worth retrying."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status in (408, 429) or self.status >= 500  # 408: the body arrived too late
