//! `cargo fuzz run loader`: see `pbc_compiler::fuzzing::load` and docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pbc_compiler::fuzzing::load(data);
});
