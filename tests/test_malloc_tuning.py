"""glibc malloc settings for extraction: freed activations are reused while held, and given back after."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fdt.features_store import malloc_tuning

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc tuning")

# 100 MB blocks, above glibc's 32 MB mmap ceiling: a CPU network's activations (vgg16 at batch 32: 411 MB)
_PROBE = r"""
import json, resource, sys
import torch
from fdt.features_store import malloc_tuning

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20

def cycle(times=8):
    before = faults()
    for _ in range(times):
        block = torch.ones(100 << 18)  # 100 MB, written: every page touched (torch, unlike numpy, asks for no huge pages)
        del block
    return faults() - before

out = {}
malloc_tuning.reuse_freed_memory()
out["reuse"] = cycle()
base = rss_mb()
with malloc_tuning.hold_freed_memory():
    cycle()  # the heap grows to fit: memalign's padding keeps a freed block from fitting the next one for a few rounds
    out["held"] = cycle()
    with malloc_tuning.hold_freed_memory():
        pass
    out["held_after_inner"] = cycle()
    out["rss_held"] = rss_mb() - base
out["rss_after"] = rss_mb() - base
block = torch.ones(700 << 18)  # 700 MB: larger than any free chunk the heap has (which a request would reuse first)
del block
out["rss_after_large"] = rss_mb() - base
print(json.dumps(out))
"""


def test_held_memory_is_reused_then_given_back():
    done = subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True)
    out = json.loads(done.stdout)
    pages = 100 * 2**20 // 4096
    assert out["reuse"] > 8 * pages * 0.9, out  # each 100 MB block is new pages: faulted in and zeroed every time
    assert out["held"] < pages / 10, out  # reused from the heap
    assert out["held_after_inner"] < pages / 10, out  # an inner block's exit does not end the outer one's hold
    assert out["rss_held"] > 90, out  # the freed block stays in the process while held...
    assert out["rss_after"] < 20, out  # ...and goes back to the kernel after
    assert out["rss_after_large"] < 20, out  # mapped and unmapped again: the settings are back to reuse_freed_memory's


def test_hold_is_released_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with malloc_tuning.hold_freed_memory():
            assert malloc_tuning._holders == 1
            raise RuntimeError("boom")
    assert malloc_tuning._holders == 0


def test_an_extraction_runs_its_network_with_freed_memory_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from PIL import Image

    from fdt.data import ImageRecord
    from fdt.features_store.extraction import extract_records
    from fdt.features_store.extractors.fft import FFTExtractor

    held_during_forward = []
    real = FFTExtractor.forward

    def spy(self, batch):
        held_during_forward.append(malloc_tuning._holders)
        return real(self, batch)

    monkeypatch.setattr(FFTExtractor, "forward", spy)
    for index in range(3):
        Image.fromarray(np.full((16, 16, 3), index * 60, np.uint8)).save(tmp_path / f"{index}.png")
    records = [ImageRecord(tmp_path / f"{index}.png", "real", 0) for index in range(3)]
    extract_records(records, "fft", {"size": 4}, "native", tmp_path / "store", workers=0, progress=False, batch_size=2)
    assert held_during_forward == [1, 1], held_during_forward  # two batches, both held
    assert malloc_tuning._holders == 0  # and released after the run


_NESTED = r"""
import json, os, resource, sys
import numpy as np
from fdt.features_store import malloc_tuning

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20

def retained_after_large_block():
    base = rss_mb()
    block = np.ones(700 << 17)  # 700 MB: no free chunk of the heap fits it (numpy: no threads, which a fork would hang)
    del block
    return rss_mb() - base

out = {}
malloc_tuning.reuse_freed_memory()
with malloc_tuning.hold_freed_memory():
    malloc_tuning.reuse_freed_memory()  # another extraction starting in this process
    out["held_after_reuse"] = retained_after_large_block()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, json.dumps([malloc_tuning._holders, retained_after_large_block()]).encode())
        os._exit(0)
    os.waitpid(child, 0)
    out["child_holders"], out["child_retained"] = json.loads(os.read(read, 1000))
print(json.dumps(out))
"""


def test_a_hold_survives_another_extractions_start_and_is_not_inherited_by_a_fork():
    done = subprocess.run([sys.executable, "-c", _NESTED], check=True, capture_output=True, text=True)
    out = json.loads(done.stdout)
    assert out["held_after_reuse"] > 600, out  # reuse_freed_memory did not end the running block's hold
    assert out["child_holders"] == 0, out
    assert out["child_retained"] < 20, out  # the child maps and unmaps large blocks again, as reuse_freed_memory sets
