//! The policy parser: any text that parses prints to a rule that parses back
//! to the same rule, and printing is stable.
#![no_main]

use keywarden::policy::Rule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = Rule::parse(text) else {
        return;
    };
    let printed = rule.to_string();
    let again = Rule::parse(&printed).expect("a printed rule parses");
    assert_eq!(again, rule, "{text:?} printed as {printed:?}");
    assert_eq!(again.to_string(), printed);
});
