#!/usr/bin/env python3
"""Writes the mce-test hugepage scenarios (one per case of cases/function/hwpoison/run-huge-test.sh).

thugetlb (Naoya Horiguchi) maps 2 huge pages (file on hugetlbfs, SysV SHM_HUGETLB, or MAP_ANONYMOUS|MAP_HUGETLB,
shared or private), writes and reads them, sets PR_MCE_KILL_EARLY for the "early" cases, forks a child (which
COW-writes the pages first in the "cow" cases), poisons page 512 ("head", the first 4 KiB of huge page 1) or 513
("tail") with MADV_HWPOISON, then writes and reads every huge page again - all but the poisoned one in the
"late_avoid" cases. It installs no SIGBUS handler: the assertion of each case is who is killed by SIGBUS and who
survives. The child exits once the parent's madvise is done (here it is left alive, or is killed).
Run: python3 scenarios/peers/mce-test/generate.py  (rewrites run-huge-test-*.yaml next to this file)
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = [("head", 0), ("tail", 0x1000)]
KILLS = ["early", "late_touch", "late_avoid"]
BACKINGS = ["file", "shm", "anonymous"]
SHARES = ["fork_shared", "fork_private_nocow", "fork_private_cow"]


def case(target, off, kill, backing, share):
    if backing == "shm" and share != "fork_shared":
        return None  # run-huge-test.sh has only fork_shared for shm
    private = share != "fork_shared"
    cow = share == "fork_private_cow"
    poison = 0x200000 + off
    name = f"run-huge-test-{target}-{kill}-{backing}-{share.replace('_', '-')}"
    steps = []
    if backing == "file":
        steps += ["  - open: {as: A, path: /dev/hugepages/" + name + ", fd: f}",
                  "  - ftruncate: {as: A, fd: f, length: 4M}",
                  f"  - mmap: {{as: A, length: 4M, flags: [{'MAP_PRIVATE' if private else 'MAP_SHARED'}], fd: f, name: h}}"]
    elif backing == "shm":
        steps += ["  - shmget: {as: A, shm: s, size: 4M, flags: [SHM_HUGETLB]}",
                  "  - shmat: {as: A, shm: s, name: h}"]
    else:
        steps += [f"  - mmap: {{as: A, length: 4M, flags: [{'MAP_PRIVATE' if private else 'MAP_SHARED'}, MAP_ANONYMOUS, MAP_HUGETLB], name: h}}"]
    steps += ["  - store: {as: A, map: h, offset: 0, length: 4M, pattern: az}",
              "  - load: {as: A, map: h, offset: 0, length: 4M}",
              "    expect: {outcome: ok, data: az}"]
    if kill == "early":
        steps += ["  - prctl: {as: A, option: PR_MCE_KILL, arg2: PR_MCE_KILL_SET, arg3: PR_MCE_KILL_EARLY}"]
    steps += ["  - fork: {as: A, child: B}"]
    if cow:
        steps += ["  - store: {as: B, map: h, offset: 0, length: 4M, pattern: az}",
                  "  - load: {as: B, map: h, offset: 0, length: 4M}",
                  "    expect: {outcome: ok, data: az}"]
    # who is told at injection: the injector (forced AR since 6.11; AO when early-kill before that); the child if it is
    # early-kill (inherited prctl) and maps the poisoned folio. The parent wrote its pages before fork(), so in a private
    # mapping (file or anonymous) the poisoned folio is the parent's anonymous copy: the child shares it until it writes
    # its own (cow), so only a child without a copy is told
    child_told = kill == "early" and not cow
    a_dies_now_new = True
    a_dies_now_old = kill == "early"
    dead_new = {"A": "SIGBUS"}
    dead_old = {"A": "SIGBUS" if a_dies_now_old else "alive"}
    dead_new["B"] = dead_old["B"] = "SIGBUS" if child_told else "alive"
    steps += [f"  - madvise: {{as: A, map: h, offset: 0x{poison:x}, length: 4K, advice: MADV_HWPOISON}}",
              "    expect:",
              "      dead: {" + ", ".join(f"{k}: {v}" for k, v in dead_new.items()) + "}",
              "    expect_kernel:",
              "      - kernel: \"<6.11\"",
              "        ret: 0",
              "        dead: {" + ", ".join(f"{k}: {v}" for k, v in dead_old.items()) + "}"]
    # the parent's second pass (write + read of every huge page, or of all but the poisoned one)
    if kill == "late_avoid":
        final_a = "alive"
        steps += ["  - store: {as: A, map: h, offset: 0, length: 2M, pattern: az}",
                  "  - load: {as: A, map: h, offset: 0, length: 2M}"]
    else:
        final_a = "SIGBUS"
        steps += ["  - store: {as: A, map: h, offset: 0, length: 4M, pattern: az}"]
    steps += ["  - check:",
              "    expect:",
              f"      dead: {{A: SIGBUS, B: {dead_new['B']}}}",
              "    expect_kernel:",
              "      - kernel: \"<6.11\"",
              f"        dead: {{A: {final_a}, B: {dead_old['B']}}}"]
    who = {"early": "PR_MCE_KILL_EARLY (inherited by the child)", "late_touch": "late kill; the parent touches the poisoned huge page again",
           "late_avoid": "late kill; the parent's second pass skips the poisoned huge page"}[kill]
    text = f"""name: "mce-test thugetlb {target} {kill} {backing} {share}: who SIGBUS kills"
description: >
  Port of mce-test cases/function/hwpoison/run-huge-test.sh case "2 1 {target} {kill} {backing} {share}"
  (thugetlb -x -m 2 -o {512 if target == 'head' else 513}{' -e' if kill == 'early' else ''}{' -a' if kill == 'late_avoid' else ''}{' -S' if backing == 'shm' else ' -A' if backing == 'anonymous' else ' -f N'}{' -F' if share == 'fork_shared' else ' -Fp' if share == 'fork_private_nocow' else ' -Fpc'}): {backing} hugepages,
  {'a child that writes its own copy first, ' if cow else ''}{who}. No process handles SIGBUS. Since 6.11 the
  injector is always killed during madvise() (a forced BUS_MCEERR_AR); before, only the early-kill process is told at
  injection (BUS_MCEERR_AO) and the late-kill parent dies when it touches the page again. The child dies with it only
  if it is early-kill and still maps the poisoned folio.
spec: "mce-test thugetlb.c main(), run-huge-test.sh exec_testcase"
mainline: true
host: {{memory: 4G, hugepages: {{2M: 6}}}}
processes: [{{name: A, sigbus: default}}]
steps:
""" + "\n".join(steps) + "\n"
    return name, text


for t, off in TARGETS:
    for k in KILLS:
        for b in BACKINGS:
            for s in SHARES:
                c = case(t, off, k, b, s)
                if c:
                    with open(os.path.join(HERE, c[0] + ".yaml"), "w") as f:
                        f.write(c[1])
