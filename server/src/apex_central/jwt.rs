//! The Apex Central Automation API's request token, as Trend Micro
//! documents it (docs/ROSTER.md, "Authentication"): a JWT signed with
//! HS256 and the application's API key, whose payload carries `appid`,
//! `iat` (Unix seconds), `version` `"V1"` and `checksum`, the Base64 of the
//! SHA-256 of `METHOD|path and query, lowercased|API headers|body`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104), over the `sha2` the coordinator already links.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|byte| byte ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|byte| byte ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The request's checksum: `headers` are the canonical `API*` headers
/// (none for the calls rollcall makes: empty).
pub fn checksum(method: &str, path_and_query: &str, headers: &str, body: &str) -> String {
    let text = format!(
        "{}|{}|{}|{}",
        method.to_uppercase(),
        path_and_query.to_lowercase(),
        headers,
        body
    );
    STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The `Authorization: Bearer` token for one request.
pub fn token(app_id: &str, api_key: &str, iat_s: i64, method: &str, path_and_query: &str, body: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = serde_json::json!({
        "appid": app_id,
        "iat": iat_s,
        "version": "V1",
        "checksum": checksum(method, path_and_query, "", body),
    });
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(api_key.as_bytes(), signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test cases 1 and 6 (a key longer than a block).
    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex::encode(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_checksum_hashes_the_documented_string() {
        // METHOD|lowercased path and query|headers|body.
        let expected = STANDARD.encode(Sha256::digest(
            b"GET|/webapp/api/agentresource/productagents?product=slf_product_officescan_ce||",
        ));
        assert_eq!(
            checksum(
                "get",
                "/WebApp/API/AgentResource/ProductAgents?product=SLF_PRODUCT_OFFICESCAN_CE",
                "",
                ""
            ),
            expected
        );
    }

    #[test]
    fn the_token_carries_the_documented_claims_and_signature() {
        let token = token("APP-1", "key", 1_700_000_000, "GET", "/WebApp/API/x?y=1", "");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["appid"], "APP-1");
        assert_eq!(payload["iat"], 1_700_000_000);
        assert_eq!(payload["version"], "V1");
        assert_eq!(payload["checksum"], checksum("GET", "/webapp/api/x?y=1", "", ""));
        let signature = hmac_sha256(b"key", format!("{}.{}", parts[0], parts[1]).as_bytes());
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap(), signature);
    }
}
