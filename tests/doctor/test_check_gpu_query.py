"""A tool that rejects one question is not a GPU that is down. Each machine has a working driver
and GPU, and an nvidia-smi that cannot answer everything the doctor asks (an older driver's,
one that names no field in its refusal, none at all in a container): the doctor asks less, field
by field, or reads the driver's own /proc files, and reports the real finding, never a reboot."""

import pytest

OLD_DRIVER = "470.182.03"  # its nvidia-smi predates the compute_cap field (driver 510)
RTX_3060 = (("NVIDIA GeForce RTX 3060", 12288, 11800, "8.6"),)


def rebooted(r) -> bool:
    """Whether the doctor judged the GPU as not answering (its fix: reboot to reload the driver),
    as opposed to a reboot after installing a newer driver."""
    return any("reboot" in c for f in r.data["findings"] if f["id"].startswith("gpu.driver")
               and f["id"] != "gpu.driver_cuda" for c in f["fix"]["commands"])


def test_old_nvidia_smi_without_compute_cap_shows_the_real_problem(fake):
    """Driver 470 with torch cu121: its nvidia-smi rejects the whole query for compute_cap. The
    GPU answers the other fields; the finding is the driver too old for CUDA 12."""
    fake.gpu_box(driver=OLD_DRIVER)
    fake.smi(RTX_3060, OLD_DRIVER, unknown=("compute_cap",))
    r = fake.run()
    driver = r.find("gpu.driver")
    assert driver["status"] == "pass" and OLD_DRIVER in driver["summary"]
    assert "nvidia-smi does not know the field 'compute_cap' (an older driver)" in driver[
        "details"]
    f = r.find("gpu.driver_cuda")
    assert f["status"] == "fail" and "needs >= 525.60.13" in f["summary"]
    assert r.status("resources.vram") == "pass"  # memory was still read
    assert r.status("gpu.devices") == "info"  # compute capability unknown, said so
    assert not rebooted(r)


@pytest.mark.parametrize("unknown", [("compute_cap", "pci.bus_id"), ("uuid", "memory.free"),
                                     ("driver_version", "compute_cap", "uuid")])
def test_each_rejected_field_is_dropped_and_the_rest_read(fake, unknown):
    fake.gpu_box()
    fake.smi(RTX_3060, unknown=unknown)
    r = fake.run("gpu", "resources.vram")
    assert r.rc == 0, r.stdout
    assert r.status("gpu.driver") == "pass"
    # the driver version comes from /proc/driver/nvidia/version when nvidia-smi cannot say it
    assert r.status("gpu.driver_cuda") == "pass"
    notes = r.find("gpu.driver")["details"]
    assert {n for n in notes if "does not know the field" in n} == {
        f"nvidia-smi does not know the field {u!r} (an older driver)" for u in unknown}


def test_a_refusal_that_names_no_field_is_answered_field_by_field(fake):
    """An nvidia-smi that refuses any query of more than two fields with a message naming
    none: the doctor asks index,name and then each field alone, and gets everything."""
    fake.gpu_box(gpus=(("NVIDIA GeForce RTX 2070", 8192, 7900, "7.5"),))
    fake.smi((("NVIDIA GeForce RTX 2070", 8192, 7900, "7.5"),), reject_all=2)
    r = fake.run("gpu", "torch.arch", "precision.bf16")
    dev = r.find("gpu.devices")
    assert dev["status"] == "pass" and "sm_75" in dev["summary"] and "8.0 GiB" in dev["summary"]
    assert r.status("torch.arch") == "pass"
    assert r.status("precision.bf16") == "warn"  # the real finding for a Turing card


def test_no_nvidia_smi_in_a_container_reads_the_drivers_own_list(fake):
    """A container with the GPU and the driver's device nodes but without nvidia-smi and NVML:
    /proc/driver/nvidia/gpus lists the GPU. A warning that the tools are missing, not a reboot
    and not 'no GPU'."""
    fake.gpu_box().container("docker")
    (fake.bin / "nvidia-smi").unlink()
    fake.file("/dev/nvidia0", "")
    fake.file("/proc/driver/nvidia/gpus/0000:01:00.0/information",
              "Model: \t\t NVIDIA GeForce RTX 3060\nIRQ:   \t\t 145\n"
              "GPU UUID: \t GPU-8f6b3e1c-53a2-4c1e-9f0d-2b7c00000000\nVideo BIOS: \t "
              "94.06.2f.00.9a\nBus Type: \t PCIe\nDMA Size: \t 47 bits\nDMA Mask: \t "
              "0x7fffffffffff\nBus Location: \t 0000:01:00.0\nDevice Minor: \t 0\n"
              "GPU Excluded:\t No\n")
    r = fake.run("gpu", "torch")
    f = r.find("gpu.driver")
    assert f["status"] == "warn", f
    assert "lists 1 GPU(s), but neither NVML nor nvidia-smi answers" in f["summary"]
    assert "NVIDIA GeForce RTX 3060" in " ".join(r.find("gpu.devices")["details"])
    assert r.status("gpu.driver_cuda") == "pass"  # the driver version from /proc
    assert r.status("torch.cuda_build") == "pass"  # a GPU machine, and torch is a CUDA build
    assert not rebooted(r)


def test_a_gpu_that_is_lost_is_still_a_failure(fake):
    """Asking less does not help when the GPU itself does not answer."""
    fake.gpu_box()
    fake.smi_failing("Unable to determine the device handle for GPU0000:01:00.0: GPU is lost. "
                     "Reboot the system to recover this GPU", rc=15)
    r = fake.run("gpu.driver")
    assert r.status("gpu.driver") == "fail" and rebooted(r)
