"""Document-encoding levers, one by one, on a catalogue's rendered texts (run by bench/build.py --levers,
or alone: python bench/levers.py CATALOGUE). Prints one JSON object: lever -> texts a second, seconds,
and the mean and least cosine to the float32 reference."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from recsys.build.texts import render
from recsys.catalogue import load_catalogue
from recsys.model.encoder import TransformerEncoder, padded, pool, token_batches
from recsys.model.onnxquery import export, ffn_outputs, quantize
from recsys.model.templates import Template
from recsys.settings import Settings


def main(catalogue: Path) -> None:
    settings = Settings.from_env({})
    rendered = render(load_catalogue(catalogue).products, Template.load(settings.templates_path))
    both = [*rendered.search, *rendered.similar]
    texts = list(dict.fromkeys(both))
    encoder = TransformerEncoder(settings.resolved_model_dir, threads=2)
    model = encoder.model()
    torch.set_num_threads(2)
    ids = encoder.tokenize(texts)
    lengths = [len(x) for x in ids]
    by_chars = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    fixed = [by_chars[i : i + 32] for i in range(0, len(texts), 32)]
    budget = token_batches(lengths, 8192, 256)

    def torch_pass(batches: list[list[int]], bf16: bool) -> np.ndarray:
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
        with torch.inference_mode():
            for batch in batches:
                input_ids, mask = padded([ids[i] for i in batch])
                tensors = torch.from_numpy(input_ids), torch.from_numpy(mask)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    hidden = model(*tensors)
                vectors = pool(hidden.float(), tensors[1], "mean")
                out[batch] = torch.nn.functional.normalize(vectors, dim=1).numpy()
        return out

    def onnx_pass(int8: bool, ffn_out_fp32: bool = False) -> Callable[[], np.ndarray]:
        import onnxruntime

        folder = Path(settings.data_dir).resolve() / "bench-levers"
        path = folder / f"model{'-int8' if int8 else ''}{'-ffn-out-fp32' if ffn_out_fp32 else ''}.onnx"
        if not path.is_file() and ffn_out_fp32:
            fp32 = folder / "model.onnx"
            if not fp32.is_file():
                export(encoder, fp32)
            quantize(fp32, path, exclude=ffn_outputs(fp32))
        elif not path.is_file():
            export(encoder, path, int8=int8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run() -> np.ndarray:
            out = np.empty((len(texts), encoder.dim), dtype=np.float32)
            for batch in budget:
                input_ids, mask = padded([ids[i] for i in batch])
                out[batch] = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            return out

        return run

    reference = torch_pass(budget, False)
    levers: dict[str, Callable[[], np.ndarray]] = {
        "before: 32 texts a batch, sorted by characters, fp32": lambda: torch_pass(fixed, False),
        "batches of 8,192 padded tokens, fp32": lambda: torch_pass(budget, False),
        "batches of 8,192 padded tokens, bf16 (the default)": lambda: torch_pass(budget, True),
        "ONNX Runtime fp32, token batches": onnx_pass(False),
        "ONNX Runtime int8 per channel, token batches": onnx_pass(True),
        "ONNX Runtime int8, each FFN output MatMul fp32": onnx_pass(True, ffn_out_fp32=True),
    }
    report: dict[str, dict[str, float]] = {
        "distinct texts (both templates, one stream)": {"texts": len(texts), "of": len(both)}
    }
    for name, run in levers.items():
        run()  # warm-up (and the ONNX export)
        started = time.perf_counter()
        vectors = run()
        seconds = time.perf_counter() - started
        cosines = (vectors * reference).sum(axis=1)
        report[name] = {
            "texts_per_s": round(len(texts) / seconds, 1),
            "seconds": round(seconds, 2),
            "mean_cosine": round(float(cosines.mean()), 6),
            "least_cosine": round(float(cosines.min()), 4),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
