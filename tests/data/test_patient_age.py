# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""Tests of DICOM PatientAge / date parsing."""

from __future__ import annotations

import datetime
import math
import unittest

from parameterized import parameterized

from monai_fair.data.patient_age import (
    age_from_dates,
    parse_dicom_date,
    parse_patient_age,
    parse_patient_age_with_reason,
    resolve_patient_age,
)

VALID_CASES = [
    ("065Y", 65.0),
    ("030M", 2.5),
    ("012W", 12 * 7 / 365.25),
    ("005D", 5 / 365.25),
    ("000Y", 0.0),
    ("65Y", 65.0),  # not zero-padded
    (" 065 Y ", 65.0),
    ("065y", 65.0),
    ("72", 72.0),  # bare number read as years
    (b"070Y", 70.0),
    (["045Y"], 45.0),  # DICOM-JSON "Value" list
]
INVALID_CASES = [
    ("ABC", "not in DICOM AS format"),
    ("999Y", "implausible"),
    ("121Y", "implausible"),
    ("", "missing or empty"),
    ("   ", "missing or empty"),
    (None, "missing or empty"),
    ([], "missing or empty"),
    ("65.5Y", "not in DICOM AS format"),
    ("-10Y", "not in DICOM AS format"),
    ("065X", "not in DICOM AS format"),
    ("1234Y", "not in DICOM AS format"),
    (float("nan"), "missing or empty"),
]


class TestParsePatientAge(unittest.TestCase):
    @parameterized.expand(VALID_CASES)
    def test_valid(self, value, expected):
        age, reason = parse_patient_age_with_reason(value)
        self.assertAlmostEqual(age, expected, places=9)
        self.assertEqual(reason, "")
        self.assertAlmostEqual(parse_patient_age(value), expected, places=9)

    @parameterized.expand(INVALID_CASES)
    def test_invalid_is_nan_with_reason(self, value, reason_part):
        age, reason = parse_patient_age_with_reason(value)
        self.assertTrue(math.isnan(age))
        self.assertIn(reason_part, reason)
        self.assertTrue(math.isnan(parse_patient_age(value)))

    def test_exactly_max_age_is_plausible(self):
        # the bound is inclusive: "120Y" is the oldest plausible age, "121Y" is not
        self.assertEqual(parse_patient_age_with_reason("120Y"), (120.0, ""))
        self.assertTrue(math.isnan(parse_patient_age("121Y")))
        self.assertEqual(parse_patient_age("100Y", max_age=100), 100.0)

    def test_max_age_is_configurable(self):
        self.assertEqual(parse_patient_age("110Y"), 110.0)
        self.assertTrue(math.isnan(parse_patient_age("110Y", max_age=100)))


class TestDates(unittest.TestCase):
    def test_parse_dicom_date(self):
        self.assertEqual(parse_dicom_date("19400305"), datetime.date(1940, 3, 5))
        self.assertEqual(parse_dicom_date("1940.03.05"), datetime.date(1940, 3, 5))  # ACR-NEMA form
        for bad in ("", None, "1940-03", "19401305", "abcdefgh", "19400230"):
            self.assertIsNone(parse_dicom_date(bad), bad)

    def test_age_from_dates_matches_datetime_oracle(self):
        age, reason = age_from_dates("19400305", "20040826")
        expected = (datetime.date(2004, 8, 26) - datetime.date(1940, 3, 5)).days / 365.25
        self.assertEqual(reason, "")
        self.assertAlmostEqual(age, expected, places=12)
        self.assertEqual(int(age), 64)

    def test_same_day_study_is_age_zero(self):
        # a newborn imaged on the day of birth: age 0, not "birth after study"
        self.assertEqual(age_from_dates("20040826", "20040826"), (0.0, ""))
        age, source, reason = resolve_patient_age("", "20040826", "20040826")
        self.assertEqual((age, source), (0.0, "dates"))
        self.assertNotIn("birth", reason)  # a note on the missing PatientAge, never "birth after study"

    def test_age_from_dates_at_max_age(self):
        # exactly max_age years of days is plausible, one day more is not
        max_age = (datetime.date(1910, 1, 1) - datetime.date(1900, 1, 1)).days / 365.25
        age, reason = age_from_dates("19000101", "19100101", max_age=max_age)
        self.assertEqual((age, reason), (max_age, ""))
        self.assertTrue(math.isnan(age_from_dates("19000101", "19100102", max_age=max_age)[0]))

    @parameterized.expand(
        [
            ("", "20040826", "PatientBirthDate missing"),
            ("19400305", "", "study date missing"),
            ("20050101", "20040826", "after study date"),
            ("18000101", "20040826", "implausible"),
        ]
    )
    def test_age_from_bad_dates(self, birth, study, reason_part):
        age, reason = age_from_dates(birth, study)
        self.assertTrue(math.isnan(age))
        self.assertIn(reason_part, reason)
        self.assertNotIn(birth or "x", reason.replace("PatientBirthDate", ""))  # dates are never echoed

    def test_resolve_prefers_patient_age_then_dates(self):
        self.assertEqual(resolve_patient_age("064Y", "19400305", "20040826"), (64.0, "PatientAge", ""))
        disagree = resolve_patient_age("050Y", "19400305", "20040826")  # the dates give 64.5 years
        self.assertEqual(disagree[:2], (50.0, "PatientAge"))
        self.assertIn("disagree", disagree.reason)
        fallback = resolve_patient_age("ABC", "19400305", "20040826")
        self.assertEqual(fallback.source, "dates")
        self.assertAlmostEqual(fallback.age, age_from_dates("19400305", "20040826")[0])
        unknown = resolve_patient_age("999Y", "", "20040826")
        self.assertTrue(math.isnan(unknown.age))
        self.assertEqual(unknown.source, "")
        self.assertIn("implausible", unknown.reason)
        self.assertIn("PatientBirthDate missing", unknown.reason)


if __name__ == "__main__":
    unittest.main()
