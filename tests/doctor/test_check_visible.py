"""Checks judge the GPUs the run will see. On machines with several GPUs, CUDA_VISIBLE_DEVICES
(indices, GPU-/MIG- UUIDs) and CUDA_DEVICE_ORDER decide which ones torch gets: a problem of a
hidden GPU is not reported, a problem of the visible one always is, whatever order nvidia-smi
lists them in; where CUDA's own numbering (fastest first) leaves it open which GPU an index is,
every GPU it could be is judged and the doctor says how to make it certain."""

import pytest

from tests.doctor import fake_smi

GTX_1080 = ("NVIDIA GeForce GTX 1080", 8192, 7900, "6.1")  # Pascal: not in torch cu128 builds
RTX_3060 = ("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6")
RTX_2060 = ("NVIDIA GeForce RTX 2060", 6144, 5900, "7.5")  # 6 GB: under the 8 GB target
RTX_4090 = ("NVIDIA GeForce RTX 4090", 24564, 24000, "8.9")


def box(fake, gpus, **env):
    fake.gpu_box(cuda="12.8", gpus=gpus)
    fake.env.update(env)
    return fake


@pytest.mark.parametrize("gpus, visible, bad", [
    ((GTX_1080, RTX_3060), "1", False),  # the Pascal card is hidden
    ((GTX_1080, RTX_3060), "0", True),   # the Pascal card is the run's
    ((RTX_3060, GTX_1080), "1", True),   # nvidia-smi lists a good GPU first: still found
    ((RTX_3060, GTX_1080), "0", False),
])
def test_torch_arch_judges_the_visible_gpu_only(fake, gpus, visible, bad):
    r = box(fake, gpus, CUDA_VISIBLE_DEVICES=visible, CUDA_DEVICE_ORDER="PCI_BUS_ID").run(
        "gpu", "torch.arch", "precision", "bnb.arch", "multigpu")
    arch = r.find("torch.arch")
    assert arch["status"] == ("fail" if bad else "pass"), arch
    assert ("GTX 1080" in arch["summary"]) is bad
    assert r.status("precision.bf16") == ("warn" if bad else "pass")
    vis = r.find("gpu.visible")
    assert vis["status"] == "pass"
    assert f"the run sees GPU {visible} ({gpus[int(visible)][0]})" in vis["summary"]
    assert f"hidden, not judged: GPU {1 - int(visible)} {gpus[1 - int(visible)][0]}" in vis[
        "details"]
    assert {r.status("multigpu.mixed"), r.status("multigpu.p2p")} == {"skip"}  # one GPU seen


@pytest.mark.parametrize("which", [0, 1])
def test_uuids_name_the_gpu_whatever_the_order(fake, which):
    box(fake, (GTX_1080, RTX_3060), CUDA_VISIBLE_DEVICES=fake_smi.uuid(which)[:12])
    r = fake.run("gpu.visible", "torch.arch")
    assert r.status("gpu.visible") == "pass"
    assert r.status("torch.arch") == ("fail" if which == 0 else "pass")


def test_an_index_under_cudas_own_order_judges_every_gpu_it_could_be(fake):
    """No CUDA_DEVICE_ORDER: CUDA numbers mixed GPUs fastest first, so "1" is not nvidia-smi's
    GPU 1 for certain. The Pascal card may be the one: torch.arch fails on it, and gpu.visible
    says how to make the choice certain."""
    r = box(fake, (GTX_1080, RTX_3060), CUDA_VISIBLE_DEVICES="1").run("gpu.visible",
                                                                      "torch.arch")
    vis = r.find("gpu.visible")
    assert vis["status"] == "warn" and "fastest first" in vis["summary"]
    assert vis["fix"]["local"] == ["export CUDA_DEVICE_ORDER=PCI_BUS_ID"]
    assert r.status("torch.arch") == "fail"
    fake.env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    assert fake.run("torch.arch").status("torch.arch") == "pass"


def test_identical_gpus_need_no_order(fake):
    r = box(fake, (RTX_3060, RTX_3060), CUDA_VISIBLE_DEVICES="1").run("gpu.visible")
    assert r.status("gpu.visible") == "pass"


def test_vram_of_the_visible_gpu(fake):
    """A 24 GB card and a 6 GB card: the memory warning follows the one the run gets."""
    order = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    r = box(fake, (RTX_4090, RTX_2060), CUDA_VISIBLE_DEVICES="1", **order).run("resources.vram")
    assert r.status("resources.vram") == "warn" and "GPU 1" in r.find("resources.vram")[
        "summary"]
    r = box(fake, (RTX_4090, RTX_2060), CUDA_VISIBLE_DEVICES="0", **order).run("resources.vram")
    assert r.status("resources.vram") == "pass"


def test_mig_device_is_judged_as_its_slice(fake):
    """An A100 split into MIG devices: CUDA_VISIBLE_DEVICES names a 1g.5gb slice, which is
    under the 8 GB the configs need, though the A100 has 40 GB."""
    a100 = ("NVIDIA A100-SXM4-40GB", 40960, 40000, "8.0")
    fake.gpu_box(gpus=(a100,))
    mig = "MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f"
    fake.smi((a100,), mig={0: [f"MIG 1g.5gb      Device  0: (UUID: {mig})",
                              "MIG 3g.20gb     Device  1: (UUID: MIG-0b8f9a1e-1d2c-5e3f-8a4b-"
                              "6c7d8e9f0a1b)"]})
    fake.env["CUDA_VISIBLE_DEVICES"] = mig
    r = fake.run("gpu.visible", "resources.vram")
    assert r.status("gpu.visible") == "pass"
    assert "MIG 1g.5gb" in r.find("gpu.visible")["summary"]
    assert r.status("resources.vram") == "warn"
    fake.env["CUDA_VISIBLE_DEVICES"] = "MIG-00000000-0000-0000-0000-000000000000"
    assert fake.run("gpu.visible").status("gpu.visible") == "fail"


def test_every_gpu_visible_with_mixed_models_is_information(fake):
    r = box(fake, (GTX_1080, RTX_3060)).run("gpu.visible", "torch.arch")
    vis = r.find("gpu.visible")
    assert vis["status"] == "info" and vis["fix"]["local"] == [
        "export CUDA_DEVICE_ORDER=PCI_BUS_ID"]
    assert r.status("torch.arch") == "fail"  # the Pascal card is in the run
