//! The signature of a webhook body: HMAC-SHA256 over `<timestamp>.<body>` with the webhook's
//! secret, sent as `X-Spectacular-Signature: v1=<hex>` beside `X-Spectacular-Timestamp`
//! (Unix seconds). A receiver recomputes it, compares in constant time, and refuses a
//! timestamp too far from its own clock (a replayed message).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header holding the signature.
pub const SIGNATURE_HEADER: &str = "x-spectacular-signature";
/// The header holding the timestamp the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-spectacular-timestamp";

/// `v1=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(3 + digest.len() * 2);
    out.push_str("v1=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_published_hmac_sha256_vector() {
        // RFC 4231, test case 2 (key "Jefe"): the HMAC itself is the standard one…
        let direct = {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
            mac.update(b"what do ya want for nothing?");
            mac.finalize().into_bytes()
        };
        let hex: String = direct.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // …and the signature covers `<timestamp>.<body>`.
        let signed = signature(b"Jefe", 1_700_000_000, b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{}");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signed, format!("v1={expected}"));
    }
}
