//! The encoding of vCPU and device state chunks: a little-endian `u32` state version,
//! then the state in postcard's format, with nothing after it.

use alloc::string::ToString;
use alloc::vec::Vec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::STATE_VERSION;
use super::error::StateProblem;

/// The first state version Aerie wrote.
const FIRST_STATE_VERSION: u32 = 1;
/// Bytes of the version word.
const VERSION_BYTES: usize = 4;

/// `value` as a state chunk payload.
pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let out = Vec::from(STATE_VERSION.to_le_bytes());
    // postcard fails only on sequences of unknown length and on custom serializers
    // that fail; the state structs have neither, so this cannot happen.
    postcard::to_extend(value, out).expect("state structs always serialize")
}

/// Decodes a state chunk payload, refusing other versions and trailing bytes.
pub(super) fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, StateProblem> {
    let (version, body) = payload
        .split_first_chunk::<VERSION_BYTES>()
        .ok_or(StateProblem::NoVersion)?;
    match u32::from_le_bytes(*version) {
        STATE_VERSION => {}
        newer if newer > STATE_VERSION => return Err(StateProblem::NewerVersion(newer)),
        older @ FIRST_STATE_VERSION.. => return Err(StateProblem::OlderVersion(older)),
        other => return Err(StateProblem::UnknownVersion(other)),
    }
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|error| StateProblem::Decode(error.to_string()))?;
    if !rest.is_empty() {
        return Err(StateProblem::TrailingBytes(rest.len()));
    }
    Ok(value)
}
