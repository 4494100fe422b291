//! `cargo fuzz run resolve`: see `pbc_compiler::fuzzing::resolve` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pbc_compiler::fuzzing::resolve(data);
});
