# Stubs.s: the runner's "exception table" page (x86-64, System V ABI, Intel syntax).
#
# Kernel model: copy_mc_to_user()/__get_user with an extable entry. Every user-space access that may
# hit hwpoison (or any SIGBUS) goes through one of the tiny routines below; the SIGBUS handler (also
# here, in machine code, so it never enters the .NET runtime from a signal context) looks up the
# faulting RIP in a fixup table held in the data page and, on a match, rewrites
# uc_mcontext.gregs[REG_RIP] to the routine's fixup label, which returns an error marker.
# Every signal is recorded in a ring of 64-byte records in the data page (see ExceptionTable.cs).
#
#   load_byte(p)          -> byte value, or -1 if the load faulted        (fixup load_fix)
#   store_byte(p, v)      -> 0, or -1 if the store faulted                (fixup store_fix)
#   copy_mc(dst, src, n)  -> bytes NOT copied (0 = all); rep movsb leaves the remaining count in
#                            rcx when it faults, exactly like the kernel's copy_mc fixup
#   sys6(nr, a1..a6)      -> raw syscall result (-errno on failure). Signals generated during the
#                            syscall (e.g. BUS_MCEERR_AR from madvise(MADV_HWPOISON)) are delivered
#                            on return with RIP = sys_ret (or sys_ret-2 for a restarted syscall);
#                            the handler records them and returns.
#   handler(sig, si, uc)  -> SA_SIGINFO handler. BUS_MCEERR_AO (asynchronous) is recorded and
#                            ignored. A RIP that is neither a fixup site nor the syscall site chains
#                            to the previously installed handler (data+8), or resets SIGBUS to
#                            SIG_DFL and returns so the faulting instruction re-executes and the
#                            default action applies.
#
# Offsets used by the handler: siginfo si_signo +0, si_code +8, si_addr +16, si_addr_lsb +24 (short);
# ucontext uc_mcontext.gregs[REG_RIP] +168 (checked with offsetof on glibc x86-64).
# Data page (code base + 0x1000): +0 record count (lock xadd), +8 previous handler, +32 a zeroed
# kernel struct sigaction (SIG_DFL), +64 fixup table {fault_rip, fixup_rip} pairs ending with 0,
# +512 56 records of 64 bytes {signo:i32, code:i32, addr:u64, lsb:u64, rip:u64, action:u64, tid:u64}
# (tid from gettid(2), a raw syscall that clobbers only rax, rcx and r11: signals are thread-directed, and a
# process with several scenario threads must say which one got each).
.intel_syntax noprefix
.text
start:
load_byte:
  movzx eax, byte ptr [rdi]
  ret
load_fix:
  mov rax, -1
  ret
store_byte:
  mov byte ptr [rdi], sil
  xor eax, eax
  ret
store_fix:
  mov rax, -1
  ret
copy_mc:
  mov rcx, rdx
copy_insn:
  rep movsb
  mov rax, rcx
  ret
copy_fix:
  mov rax, rcx
  ret
sys6:
  mov rax, rdi
  mov rdi, rsi
  mov rsi, rdx
  mov rdx, rcx
  mov r10, r8
  mov r8, r9
  mov r9, qword ptr [rsp+8]
  syscall
sys_ret:
  ret
handler:
  lea r8, [rip + data]
  mov eax, 1
  lock xadd qword ptr [r8], rax
  cmp rax, 56
  jae norec
  shl rax, 6
  lea r9, [r8 + rax + 512]
  mov ecx, dword ptr [rsi]
  mov dword ptr [r9], ecx
  mov ecx, dword ptr [rsi+8]
  mov dword ptr [r9+4], ecx
  mov rcx, qword ptr [rsi+16]
  mov qword ptr [r9+8], rcx
  movzx ecx, word ptr [rsi+24]
  mov qword ptr [r9+16], rcx
  mov rcx, qword ptr [rdx+168]
  mov qword ptr [r9+24], rcx
  mov eax, 186
  syscall
  mov qword ptr [r9+40], rax
  jmp classify
norec:
  xor r9d, r9d
classify:
  cmp dword ptr [rsi+8], 5
  je is_ao
  mov rcx, qword ptr [rdx+168]
  lea r10, [r8+64]
scan:
  mov r11, qword ptr [r10]
  test r11, r11
  jz not_fixup
  cmp rcx, r11
  je do_fix
  add r10, 16
  jmp scan
do_fix:
  mov r11, qword ptr [r10+8]
  mov qword ptr [rdx+168], r11
  mov eax, 1
  jmp store_action
not_fixup:
  lea r11, [rip + sys_ret]
  cmp rcx, r11
  je at_syscall
  sub r11, 2
  cmp rcx, r11
  jne chain
at_syscall:
  mov eax, 2
  jmp store_action
is_ao:
  mov eax, 3
store_action:
  test r9, r9
  jz done
  mov qword ptr [r9+32], rax
done:
  ret
chain:
  test r9, r9
  jz chain2
  mov qword ptr [r9+32], 4
chain2:
  mov rax, qword ptr [r8+8]
  cmp rax, 1
  jbe reset_default
  jmp rax
reset_default:
  mov edi, 7
  lea rsi, [r8+32]
  xor edx, edx
  mov r10d, 8
  mov eax, 13
  syscall
  ret
code_end:
.org 4096
data:
