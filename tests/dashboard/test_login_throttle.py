"""The login throttle on its own (a fake clock; no web app)."""

from __future__ import annotations

from hipsense.dashboard.accounts.login_throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_an_address_past_its_failures_waits_until_the_oldest_leaves_the_window():
    clock = Clock()
    throttle = LoginThrottle(per_address=3, per_user=100, window_s=60.0, clock=clock)
    for k in range(3):
        clock.t = 10.0 * k
        assert throttle.retry_after_s("10.0.0.9", f"name{k}") == 0.0
        throttle.failed("10.0.0.9", f"name{k}")
    assert throttle.retry_after_s("10.0.0.9", "someone") == 60.0 - 20.0  # the first failure, at 0 s
    assert throttle.retry_after_s("10.0.0.8", "someone") == 0.0  # another address
    clock.t = 60.0
    assert throttle.retry_after_s("10.0.0.9", "someone") == 0.0


def test_a_name_is_counted_across_addresses_and_cleared_by_a_success():
    clock = Clock()
    throttle = LoginThrottle(per_address=100, per_user=2, window_s=60.0, clock=clock)
    throttle.failed("10.0.0.1", "Ana")
    throttle.failed("10.0.0.2", "ana")
    assert throttle.retry_after_s("10.0.0.3", "ANA") > 0.0
    throttle.succeeded("10.0.0.4", "ana")
    assert throttle.retry_after_s("10.0.0.3", "ana") == 0.0


def test_memory_is_bounded():
    throttle = LoginThrottle(max_keys=50, clock=Clock())
    for k in range(1000):
        throttle.failed(f"10.0.{k // 250}.{k % 250}", f"name{k}")
    assert len(throttle._failures) <= 50


def test_case_and_blank_variants_of_a_name_are_the_same_name():
    """Log-in strips and lowercases the name; so must the count (" ana" was a fresh name)."""
    throttle = LoginThrottle(per_address=100, per_user=3, window_s=60.0, clock=Clock())
    for variant in (" ana", "ANA ", "\tAna"):
        throttle.failed(f"10.0.0.{len(variant)}", variant)
    for variant in ("ana", " ana ", "ANA", "Ana\n"):
        assert throttle.retry_after_s("10.9.9.9", variant) > 0.0, variant


def test_a_success_on_one_account_keeps_the_failures_against_others():
    clock = Clock()
    throttle = LoginThrottle(per_address=5, per_user=100, window_s=60.0, clock=clock)
    for k in range(4):
        throttle.failed("10.0.0.9", "ana")  # guessing at ana ...
    throttle.failed("10.0.0.9", "ben")  # ... and ben, who then logs in from the same address
    assert throttle.retry_after_s("10.0.0.9", "ana") > 0.0
    throttle.succeeded("10.0.0.9", "ben")
    assert throttle.retry_after_s("10.0.0.9", "ana") == 0.0  # ben's own typo no longer counts ...
    throttle.failed("10.0.0.9", "ana")
    assert throttle.retry_after_s("10.0.0.9", "ana") > 0.0  # ... but the 5 guesses at ana still do
    throttle.succeeded("10.0.0.9", "carl")  # interleaved successes on other accounts
    throttle.succeeded("10.0.0.9", "ben")
    assert throttle.retry_after_s("10.0.0.9", "ana") > 0.0
