import math

import pytest

from cuecraft._numbers import is_finite_number
from cuecraft.attributes import SymbolicCondition
from cuecraft.conditioners import BeatsConditioner
from cuecraft.errors import ConditioningInputError


@pytest.mark.parametrize("value, expected", [(3, True), (2.5, True), (-1e299, True), (10**400, False),
                                             (math.inf, False), (math.nan, False), (True, False), ("3", False)])
def test_is_finite_number(value, expected):
    assert is_finite_number(value) is expected


def test_a_400_digit_bpm_is_a_typed_problem_not_an_overflow():
    with pytest.raises(ConditioningInputError, match="bpm"):
        BeatsConditioner(frame_rate=50.0, duration=2.0).condition([SymbolicCondition(bpm=10**400)])
