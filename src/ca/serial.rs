//! Certificate serial numbers: 16 random bytes with the top bit cleared, so they are
//! positive, at most 20 octets, 16 octets long, and carry 126 random bits (RFC 5280 4.1.2.2, CA/B BR).

pub fn random_serial() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes[0] &= 0x7f;
    // Never an all-zero leading byte + zero value: keep the DER length at 16 octets.
    bytes[0] |= 0x01;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial();
        let b = random_serial();
        assert_ne!(a, b);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
    }
}
