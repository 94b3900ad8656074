"""GPU and driver checks on fake machines: each asserts the status and the fix commands."""

import pytest


def test_cpu_only_machine_warns_and_says_what_runs(fake):
    fake.distro("debian-12").torch("2.13.0+cpu", None)
    r = fake.run("gpu", "torch")
    assert r.rc == 0
    assert r.status("gpu.driver") == "warn"
    assert "CPU-only" in r.find("gpu.driver")["summary"]
    assert "make smoke" in r.fix_text("gpu.driver")
    assert r.status("torch.cuda_build") == "info"
    assert {r.status(i) for i in ("gpu.driver_cuda", "gpu.devices", "torch.arch")} == {"skip"}


def test_healthy_gpu_box_passes(fake):
    r = fake.gpu_box().run("gpu", "torch")
    assert r.rc == 0, r.stdout
    assert r.status("gpu.driver") == "pass"
    assert "550.90.07" in r.find("gpu.driver")["summary"]
    dev = r.find("gpu.devices")
    assert dev["status"] == "pass" and "RTX 3060" in dev["summary"] and "sm_86" in dev["summary"]
    assert r.status("torch.cuda_build") == "pass"
    assert r.status("torch.arch") == "pass"


@pytest.mark.parametrize("distro, expected", [
    ("ubuntu-22.04", ["sudo ubuntu-drivers install", "sudo reboot"]),
    ("debian-12", ["sudo apt-get update",  # no sources file here: the edit is said in text
                   'sudo apt-get -y install linux-headers-"$(uname -r)" nvidia-driver',
                   "sudo reboot"]),
])
def test_gpu_without_driver_fails_with_distro_fix(fake, distro, expected):
    fake.distro(distro).pci_gpu().torch()
    fake.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver. Make sure that the latest NVIDIA driver is installed and running.")
    r = fake.run("gpu.driver")
    assert r.rc == 1
    assert r.status("gpu.driver") == "fail"
    assert "no NVIDIA driver is loaded" in r.find("gpu.driver")["summary"]
    cmds = r.commands("gpu.driver")
    assert cmds[-len(expected):] == expected
    assert "sudo dkms autoinstall" in cmds  # the kernel-update-without-rebuild case first


def test_open_kernel_module_version_is_read(fake):
    fake.distro("ubuntu-24.04").driver("560.35.03", open_module=True).pci_gpu().torch()
    fake.smi_failing("Unable to determine the device handle for GPU0000:01:00.0: Unknown Error")
    r = fake.run("gpu.driver", "gpu.driver_mismatch")
    assert r.status("gpu.driver") == "fail"
    assert "560.35.03" in r.find("gpu.driver")["summary"]
    assert r.commands("gpu.driver")[0] == "sudo reboot"


def test_driver_library_mismatch(fake):
    fake.distro("ubuntu-22.04").driver("550.90.07").pci_gpu().torch()
    fake.file("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.90.07", "")
    (fake.root / "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.90.07").unlink()
    fake.file("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.120", "")
    fake.smi_failing("Failed to initialize NVML: Driver/library version mismatch\n"
                     "NVML library version: 550.120", rc=18)
    r = fake.run("gpu.driver", "gpu.driver_mismatch")
    assert r.status("gpu.driver") == "pass"  # the module is loaded; the mismatch is its own check
    m = r.find("gpu.driver_mismatch")
    assert m["status"] == "fail" and "version mismatch" in m["summary"]
    assert m["fix"]["commands"] == ["sudo reboot"]
    assert "apt-mark hold" in m["fix"]["text"]


def test_driver_too_old_for_torch_cuda(fake):
    fake.gpu_box(cuda="12.6", driver="520.61.05")
    r = fake.run("gpu.driver_cuda")
    f = r.find("gpu.driver_cuda")
    assert f["status"] == "fail" and "needs >= 525.60.13" in f["summary"]
    assert f["fix"]["commands"] == ["sudo ubuntu-drivers install", "sudo reboot"]  # no torch
    # build runs on 520, so none is offered


def test_driver_below_toolkit_release_warns_and_offers_torch_build(fake):
    fake.gpu_box(cuda="13.0", driver="570.86.10")
    r = fake.run("gpu.driver_cuda")
    f = r.find("gpu.driver_cuda")
    assert f["status"] == "fail"  # CUDA 13 needs >= 580
    assert "make env TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128" in f["fix"][
        "commands"]
    fake2 = fake.gpu_box(cuda="12.6", driver="555.42.02")
    r = fake2.run("gpu.driver_cuda")
    assert r.status("gpu.driver_cuda") == "warn"


@pytest.mark.parametrize("value, status", [("", "fail"), ("-1", "fail"), ("3", "fail"),
                                           ("0,3", "warn"), ("0", "pass"),
                                           ("GPU-8f6b3e1c", "pass")])
def test_cuda_visible_devices(fake, value, status):
    fake.gpu_box().env["CUDA_VISIBLE_DEVICES"] = value
    r = fake.run("gpu.visible")
    assert r.status("gpu.visible") == status
    if status != "pass":
        assert r.commands("gpu.visible") == ["unset CUDA_VISIBLE_DEVICES"]


def test_wsl_with_linux_driver_inside(fake):
    fake.gpu_box().wsl()
    fake.file("/var/lib/dpkg/status",
              "Package: bash\nStatus: install ok installed\n\n"
              "Package: nvidia-driver-535\nStatus: install ok installed\nVersion: 535.183\n\n"
              "Package: cuda-drivers-550\nStatus: deinstall ok config-files\n")
    r = fake.run("gpu.wsl", "gpu.driver")
    f = r.find("gpu.wsl")
    assert f["status"] == "fail" and "nvidia-driver-535" in f["summary"]
    assert f["fix"]["commands"] == ["sudo apt-get purge -y 'nvidia-driver-535'", "wsl --shutdown"]


def test_wsl_driver_fix_never_installs_a_linux_driver(fake):
    fake.distro("ubuntu-22.04").wsl().torch()
    fake.smi_failing("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
                     "driver.")
    r = fake.run("gpu.driver", "gpu.wsl")
    f = r.find("gpu.driver")
    assert f["status"] == "fail"
    assert f["fix"]["commands"] == ["wsl --update"]
    assert "install no Linux driver inside WSL" in f["fix"]["text"]
    assert r.status("gpu.wsl") == "pass"


def test_wsl_without_dxg(fake):
    fake.distro("ubuntu-22.04").wsl().torch()
    (fake.root / "dev/dxg").unlink()
    r = fake.run("gpu.wsl")
    assert r.status("gpu.wsl") == "warn"


def test_nvidia_smi_that_hangs_is_killed(fake):
    fake.distro("ubuntu-22.04").driver().pci_gpu().torch()
    fake.exe("nvidia-smi", "sleep 600\n")
    r = fake.run("gpu.driver", "--timeout", "1", timeout=30)
    f = r.find("gpu.driver")
    assert f["status"] == "fail" and "no answer in 1 s" in f["summary"]
    assert r.data["seconds"] < 10
