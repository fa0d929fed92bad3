# Copyright (c) monai_fair contributors. Licensed under the Apache License, Version 2.0.
"""FairnessTensorBoardHandler: read the event file back and check scalars, images, text and layout."""

from __future__ import annotations

import io
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2

from monai_fair.handlers import FairnessTensorBoardHandler, GroupFairnessMetric, fairness_markdown
from monai_fair.metrics import FairnessSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluator_fixture import make_evaluator, make_samples  # noqa: E402

NAMES = {"0": "F", "1": "M"}


def _accumulator(log_dir: str) -> EventAccumulator:
    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


class TestFairnessTensorBoardHandler(unittest.TestCase):
    def test_scalars_images_text_layout(self):
        samples = make_samples(96, seed=11)
        with tempfile.TemporaryDirectory() as tmp:
            handler = FairnessTensorBoardHandler(log_dir=tmp)
            evaluator = make_evaluator(
                samples,
                additional_metrics={
                    "sex_fairness": GroupFairnessMetric(
                        attributes="sex",
                        group_names=NAMES,
                        reference=1,
                        min_group_size=5,
                        n_bootstrap=20,
                        seed=0,
                        metrics="all",
                    ),
                    "sex_tpr": GroupFairnessMetric(
                        attributes="sex", group_names=NAMES, metrics=["tpr"], prefix="sex_tpr/", min_group_size=5
                    ),
                },
                val_handlers=[handler],
            )
            evaluator.run(global_epoch=1)
            first = dict(evaluator.state.metrics)
            evaluator.run(global_epoch=2)
            handler.close()
            acc = _accumulator(tmp)
            tags = acc.Tags()
            # scalars: every flat value, one point per epoch, equal to engine.state.metrics of that epoch
            for key in ("sex/tpr_F", "sex/eod_F", "sex/auc_gap", "sex/auc_F_ci_low", "sex_tpr/tpr_M"):
                events = acc.Scalars(f"fairness/{key}")
                self.assertEqual([e.step for e in events], [1, 2])
                self.assertAlmostEqual(events[0].value, first[key], 5)
            self.assertNotIn("fairness/sex_tpr/auc_F", tags["scalars"])
            # images: ROC and calibration per metric and epoch, real RGB pictures
            for name in ("roc", "calibration"):
                images = acc.Images(f"fairness/sex/{name}")
                self.assertEqual([im.step for im in images], [1, 2])
                pic = Image.open(io.BytesIO(images[0].encoded_image_string))
                self.assertGreater(pic.width, 100)
                self.assertGreater(np.asarray(pic).std(), 1.0)  # not a blank canvas
            # text: Markdown table with the group names and values
            text = acc.Tensors("fairness/sex/table/text_summary")[0].tensor_proto.string_val[0].decode()
            self.assertIn("| F |", text.replace("|F|", "| F |"))
            self.assertIn("auc_gap", text)
            self.assertIn(f"{first['sex/auc_gap']:.4g}", text)
            # custom-scalars layout holds both metrics (rewritten together)
            raw = acc.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0]
            layout = layout_pb2.Layout.FromString(raw)
            titles = {c.title: [ch.title for ch in c.chart] for c in layout.category}
            self.assertEqual(set(titles), {"fairness/sex", "fairness/sex/ci", "fairness/sex_tpr"})
            margin = next(
                ch for c in layout.category if c.title == "fairness/sex/ci" for ch in c.chart if ch.title == "auc_F"
            )
            self.assertEqual(margin.margin.series[0].value, "fairness/sex/auc_F")
            self.assertEqual(margin.margin.series[0].lower, "fairness/sex/auc_F_ci_low")
            self.assertIn("tpr", titles["fairness/sex"])
            tpr_chart = next(
                ch for c in layout.category if c.title == "fairness/sex" for ch in c.chart if ch.title == "tpr"
            )
            self.assertEqual(sorted(tpr_chart.multiline.tag), ["fairness/sex/tpr_F", "fairness/sex/tpr_M"])

    def test_image_interval_and_flags(self):
        samples = make_samples(60, seed=12)
        for d in samples[:4]:
            d["sex"] = 2  # a tiny third group: NaN metrics + flag in the table
        with tempfile.TemporaryDirectory() as tmp:
            handler = FairnessTensorBoardHandler(log_dir=tmp, image_interval=2, log_scalars=False)
            evaluator = make_evaluator(
                samples,
                additional_metrics={"fair": GroupFairnessMetric(attributes="sex", min_group_size=5)},
                val_handlers=[handler],
            )
            for epoch in (1, 2, 3):
                evaluator.run(global_epoch=epoch)
            handler.close()
            acc = _accumulator(tmp)
            self.assertEqual([im.step for im in acc.Images("fairness/sex/roc")], [1, 3])
            self.assertEqual(acc.Tags()["scalars"], [])
            md = fairness_markdown(evaluator.state.fairness_details["fair"])
            self.assertIn("min_group_size", md)
            self.assertIn("NaN", md)

    def test_synchronous_and_background_errors(self):
        samples = make_samples(48, seed=13)
        with tempfile.TemporaryDirectory() as tmp:
            sync = FairnessTensorBoardHandler(log_dir=tmp, background=False, log_scalars=False, log_table=False)
            evaluator = make_evaluator(
                samples,
                additional_metrics={"fair": GroupFairnessMetric(attributes="sex", min_group_size=5)},
                val_handlers=[sync],
            )
            evaluator.run()
            sync.writer.flush()  # images were written inside the handler call: no worker to wait for
            self.assertIsNone(sync._executor)
            self.assertEqual(len(_accumulator(tmp).Images("fairness/sex/roc")), 1)
            sync.close()
        with tempfile.TemporaryDirectory() as tmp:
            failing = FairnessTensorBoardHandler(log_dir=tmp)

            def boom(details, step):
                raise RuntimeError("drawing failed")

            failing._write_images = boom
            details = evaluator.state.fairness_details["fair"]
            failing.write(details, 1)
            with self.assertRaisesRegex(RuntimeError, "drawing failed"):
                failing.flush()
            failing.write(details, 2)
            with self.assertLogs("monai_fair.handlers.tensorboard_fairness", level="ERROR"):
                failing.write(details, 3)  # the error of step 2 is logged when step 3 is queued
            with self.assertRaises(RuntimeError):
                failing.close()
            self.assertIsNone(failing._executor)

    def test_missing_details_warns(self):
        samples = make_samples(32)
        with tempfile.TemporaryDirectory() as tmp:
            handler = FairnessTensorBoardHandler(log_dir=tmp, metric_names=["not_there"])
            evaluator = make_evaluator(samples, val_handlers=[handler])
            with self.assertLogs("monai_fair.handlers.tensorboard_fairness", level="WARNING"):
                evaluator.run()
            handler.close()

    def test_spec_marks_groups_beyond_epsilon(self):
        samples = make_samples(96, seed=2)  # F has a weaker signal: a large TPR gap to M
        spec = FairnessSpec(attributes="sex", group_names={0: "F", 1: "M"}, reference="M", epsilon=0.01)
        metric = GroupFairnessMetric(spec, min_group_size=5)
        evaluator = make_evaluator(samples, additional_metrics={"fair": metric})
        evaluator.run()
        details = evaluator.state.fairness_details["fair"]
        eod_f = abs(float(details.table.gaps["eod"][0]))
        self.assertGreater(eod_f, 0.01)
        text = fairness_markdown(details, spec=spec)
        self.assertIn("metric=eod", text)
        self.assertIn(f"|eod| ≥ 0.01 vs M: F ({eod_f:.4g})", text)
        loose = fairness_markdown(details, spec=FairnessSpec(attributes="sex", reference=1, epsilon=1.0))
        self.assertIn("|eod| ≥ 1 vs M: none", loose)
        with tempfile.TemporaryDirectory() as tmp:
            handler = FairnessTensorBoardHandler(log_dir=tmp, spec=spec, epsilon=0.5, log_images=False)
            self.assertEqual(handler.spec.epsilon, 0.5)
            self.assertEqual(handler.spec.reference, 1)
            handler.close()


if __name__ == "__main__":
    unittest.main()
