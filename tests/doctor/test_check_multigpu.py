"""Multi-GPU checks on fake machines: two GeForce cards (NCCL P2P), mixed models, one process
per GPU against CUDA_VISIBLE_DEVICES and NPROC_PER_NODE. nvidia-smi is a fake answering
`nvidia-smi --query-gpu` and `nvidia-smi topo -p2p r` as the real one (tests/doctor/fake_smi.py)."""

import pytest

TWO_3060 = (("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),
            ("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"))
MIXED = (("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),
         ("NVIDIA GeForce RTX 2060", 6144, 5900, "7.5"),
         ("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"))
A100S = (("NVIDIA A100-SXM4-40GB", 40960, 40000, "8.0"),
         ("NVIDIA A100-SXM4-40GB", 40960, 40000, "8.0"))
TOPO_NS = (" \tGPU0\tGPU1\t\n GPU0\tX\tNS\t\n GPU1\tNS\tX\t\n\nLegend:\n\n  X    = Self\n"
           "  OK   = Status Ok\n  CNS  = Chipset not supported\n  GNS  = GPU not supported\n"
           "  TNS  = Topology not supported\n  NS   = Not supported\n  U    = Unknown\n")
TOPO_OK = TOPO_NS.replace("\tNS\t", "\tOK\t")


def box(fake, gpus, topo=None):
    fake.gpu_box(gpus=gpus)
    fake.smi(gpus, topo=topo)
    return fake


@pytest.mark.parametrize("topo", [TOPO_NS, None])
def test_two_geforce_cards_without_nccl_p2p_disable_warn(fake, topo):
    r = box(fake, TWO_3060, topo).run("multigpu")
    f = r.find("multigpu.p2p")
    assert f["status"] == "warn"
    assert f["summary"].startswith("2 GeForce GPU(s) and NCCL_P2P_DISABLE is not set")
    assert f["fix"]["commands"] == ["export NCCL_P2P_DISABLE=1"]
    if topo:
        assert "nvidia-smi topo -p2p r: GPU0<->GPU1 not supported (NS)" in f["details"]
    fake.env["NCCL_P2P_DISABLE"] = "1"
    assert fake.run("multigpu.p2p").status("multigpu.p2p") == "pass"


def test_p2p_disabled_where_every_pair_has_it_is_information(fake):
    box(fake, A100S, TOPO_OK).env["NCCL_P2P_DISABLE"] = "1"
    f = fake.run("multigpu.p2p").find("multigpu.p2p")
    assert f["status"] == "info" and f["fix"]["commands"] == ["unset NCCL_P2P_DISABLE"]
    fake.env.pop("NCCL_P2P_DISABLE")
    assert fake.run("multigpu.p2p").status("multigpu.p2p") == "pass"


def test_mixed_gpu_models_pick_the_identical_pair(fake):
    f = box(fake, MIXED).run("multigpu.mixed").find("multigpu.mixed")
    assert f["status"] == "warn"
    assert f["summary"] == "mixed GPUs: 2 x NVIDIA GeForce RTX 3060 + 1 x NVIDIA GeForce RTX 2060"
    assert f["fix"]["commands"] == ["export CUDA_DEVICE_ORDER=PCI_BUS_ID",
                                    "export CUDA_VISIBLE_DEVICES=0,2", "export NPROC_PER_NODE=2"]
    assert "must fit the smallest (NVIDIA GeForce RTX 2060, 6.0 GiB)" in f["fix"]["text"]


def test_same_model_is_not_mixed(fake):
    assert box(fake, TWO_3060).run("multigpu.mixed").status("multigpu.mixed") == "pass"


@pytest.mark.parametrize("env, status, summary, commands", [
    ({}, "info", "2 GPUs visible; `xtuner train` uses one unless NPROC_PER_NODE says more",
     ["NPROC_PER_NODE=2 xtuner train CONFIG --deepspeed deepspeed_zero2"]),
    ({"NPROC_PER_NODE": "2"}, "pass", "NPROC_PER_NODE=2: one process per GPU of 2 visible", []),
    ({"NPROC_PER_NODE": "2", "CUDA_VISIBLE_DEVICES": "1"}, "fail",
     "NPROC_PER_NODE=2 but 1 GPU(s) visible", ["export NPROC_PER_NODE=1"]),
    ({"NPROC_PER_NODE": "4"}, "fail", "NPROC_PER_NODE=4 but 2 GPU(s) visible",
     ["export NPROC_PER_NODE=2"]),
    ({"CUDA_VISIBLE_DEVICES": "0,0"}, "fail", "CUDA_VISIBLE_DEVICES='0,0' lists GPU 0 twice",
     ["export CUDA_VISIBLE_DEVICES=0"]),
    ({"NPROC_PER_NODE": "two"}, "fail", "NPROC_PER_NODE='two' is not a number",
     ["export NPROC_PER_NODE=2"]),
])
def test_one_process_per_visible_gpu(fake, env, status, summary, commands):
    box(fake, TWO_3060).env.update(env)
    f = fake.run("multigpu.launch").find("multigpu.launch")
    assert f["status"] == status, f
    assert f["summary"].startswith(summary)
    assert f["fix"]["commands"] == commands


def test_single_gpu_skips_the_multi_gpu_checks(fake):
    r = fake.gpu_box().run("multigpu")
    assert {r.status(i) for i in ("multigpu.p2p", "multigpu.mixed")} == {"skip"}
    assert r.status("multigpu.launch") == "pass"
