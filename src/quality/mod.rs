//! Quality of a served model, measured through the endpoint that is benchmarked: log
//! probabilities from every protocol that has them ([`logprobs`]) and the measures that compare
//! a variant (a quantized checkpoint, another precision) with its baseline ([`measures`]), and
//! the comparison of two quality files with every measure's interval ([`compare`]: no HTTP,
//! the report uses it).

pub mod compare;
pub mod logprobs;
pub mod measures;
