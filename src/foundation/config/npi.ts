/**
 * National Provider Identifier check: ten digits whose last digit is a Luhn check digit computed
 * over the first nine with the card-issuer prefix 80840 in front (the NPI standard's rule).
 * Pure; used by the config loader, the provider roster and the REST API.
 */

const NPI_PATTERN = /^\d{10}$/;
// The constant 24 is the Luhn contribution of the "80840" prefix (8,0,8,4,0 doubled where the
// algorithm doubles), so the prefix never needs to be spelled out digit by digit.
const PREFIX_80840_LUHN_SUM = 24;

export function isValidNpi(value: unknown): value is string {
  if (typeof value !== 'string' || !NPI_PATTERN.test(value)) return false;
  let sum = PREFIX_80840_LUHN_SUM;
  // Walk the first nine digits from the right; the rightmost of them is doubled (it sits next to
  // the check digit).
  for (let index = 8, double = true; index >= 0; index--, double = !double) {
    let digit = value.charCodeAt(index) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  const checkDigit = (10 - (sum % 10)) % 10;
  return checkDigit === value.charCodeAt(9) - 48;
}

export const NPI_RULE = 'ten digits with a valid Luhn check digit (80840 prefix)';
