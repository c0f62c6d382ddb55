"""localkube.polling.until: the one wait loop of the local cluster, Knative and devstack."""

import time

import pytest

from localkube import polling


class Boom(Exception):
    pass


def test_returns_once_the_check_holds_and_tolerated_errors_count_as_not_yet():
    answers = iter([OSError("not up"), False, True])

    def check():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    polling.until("it", check, time.monotonic() + 10, tolerate=(OSError,))


def test_a_dead_process_is_reported_at_once_not_as_a_timeout():
    with pytest.raises(Boom, match="etcd exited while waiting for the API server"):
        polling.until("the API server", lambda: False, time.monotonic() + 60,
                      dead=lambda: "etcd", error=Boom)


def test_past_the_deadline_it_names_what_it_waited_for():
    with pytest.raises(Boom, match="timed out waiting for readyz; logs in /x"):
        polling.until("readyz", lambda: False, time.monotonic(), error=Boom, hint="; logs in /x")


def test_an_error_it_does_not_tolerate_goes_through():
    def check():
        raise ValueError("bad")

    with pytest.raises(ValueError):
        polling.until("it", check, time.monotonic() + 10, tolerate=(OSError,))
