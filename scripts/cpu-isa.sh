# Sourced: which x86 instruction sets llama.cpp/ggml is built for, read from this CPU.
# GGML_NATIVE is never used: a native build turns on AMX, which the VM faults on (general
# protection fault in libggml-cpu, ldtilecfg), and a fixed list dies with SIGILL on a CPU that
# lacks one of them (AVX-512 on an AMD EPYC). So each option is ON exactly when /proc/cpuinfo
# lists the flag, and AMX is always OFF.

# The GGML option and the /proc/cpuinfo flag that turns it on.
__CPU_ISA_PAIRS="SSE42:sse4_2 AVX:avx AVX2:avx2 BMI2:bmi2 FMA:fma F16C:f16c AVX_VNNI:avx_vnni
  AVX512:avx512f AVX512_VBMI:avx512vbmi AVX512_VNNI:avx512_vnni AVX512_BF16:avx512_bf16"

# Prints GGML_<ISA>=ON|OFF, one per line, for the CPU flags given on stdin (/proc/cpuinfo's
# "flags" line), then the AMX options OFF.
cpu_isa_options() {
  local flags pair option cpu_flag state
  # No flags line (not x86): every option OFF.
  flags=" $(grep -m1 -E '^flags[[:space:]]*:' | cut -d: -f2 || true) "
  for pair in $__CPU_ISA_PAIRS; do
    option="${pair%%:*}"
    cpu_flag="${pair#*:}"
    state=OFF
    if [[ "$flags" == *" $cpu_flag "* ]]; then state=ON; fi
    printf 'GGML_%s=%s\n' "$option" "$state"
  done
  printf 'GGML_AMX_TILE=OFF\nGGML_AMX_INT8=OFF\nGGML_AMX_BF16=OFF\n'
}

# The same options as cmake arguments (-DGGML_<ISA>=ON|OFF ...), for llama-server's build.
cpu_isa_flags() {
  cpu_isa_options | sed 's/^/-D/' | paste -sd' ' -
}

# Exports the options as environment variables: llama-cpp-sys-2 (the runtime's in-process
# model) forwards every GGML_* variable to its cmake build. Variables already set win. A build
# for other machines (a release image) sets AGENT_CPU_BASELINE=x86-64-v3 instead: AVX2, FMA,
# F16C and BMI2, which every x86 server of the last decade has (Intel since Haswell, AMD since
# Zen), and no AVX-512.
export_cpu_isa_options() {
  local option name flags
  case "${AGENT_CPU_BASELINE:-}" in
    "") flags="$(grep -m1 -E '^flags[[:space:]]*:' /proc/cpuinfo || true)" ;;
    x86-64-v3) flags="flags : sse4_2 avx avx2 bmi2 fma f16c" ;;
    *) echo "AGENT_CPU_BASELINE=${AGENT_CPU_BASELINE}: only x86-64-v3 is known" >&2; return 1 ;;
  esac
  while IFS= read -r option; do
    name="${option%%=*}"
    if [[ -z "${!name:-}" ]]; then export "${option?}"; fi
  done < <(cpu_isa_options <<<"$flags")
}
