"""The exercise layer's words are the catalogue's and the wire's."""

from __future__ import annotations

import json

from hipsense.exercises.catalogue import load_catalogue
from hipsense.exercises.spec import MEASURES
from hipsense.exercises.vocabulary import FormFlag, Measure
from hipsense.protocol import Flag


def test_every_form_flag_is_a_known_flag_on_the_wire():
    # exercises/ and protocol/ may not import each other: the one check that they agree
    assert set(FormFlag) <= set(Flag)


def test_a_catalogue_measure_is_a_measure_and_serialises_as_its_string():
    assert MEASURES == tuple(Measure)
    spec = next(iter(load_catalogue().values()))
    assert isinstance(spec.measure, Measure)
    assert json.loads(json.dumps(spec.to_dict()))["measure"] == str(spec.measure)
