/**
 * Which writing systems a text uses, for the mixed-script check of names and emails (Unicode
 * TR39 section 5.1, "resolved script set", with its CJK augmentation). Node's RegExp knows each
 * character's Script_Extensions; it cannot list them, so the scripts are named here by their
 * ISO 15924 codes (every script of Unicode 17; test/unit/identity.test.ts checks that each
 * assigned character outside Common and Inherited belongs to one of them).
 */
const SCRIPT_CODES = (
  'Adlm Aghb Ahom Arab Armi Armn Avst Bali Bamu Bass Batk Beng Berf Bhks Bopo Brah Brai Bugi Buhd Cakm Cans Cari Cham ' +
  'Cher Chrs Copt Cpmn Cprt Cyrl Deva Diak Dogr Dsrt Dupl Egyp Elba Elym Ethi Gara Geor Glag Gong Gonm Goth Gran Grek ' +
  'Gujr Gukh Guru Hang Hani Hano Hatr Hebr Hira Hluw Hmng Hmnp Hung Ital Java Kali Kana Kawi Khar Khmr Khoj Kits Knda ' +
  'Krai Kthi Lana Laoo Latn Lepc Limb Lina Linb Lisu Lyci Lydi Mahj Maka Mand Mani Marc Medf Mend Merc Mero Mlym Modi ' +
  'Mong Mroo Mtei Mult Mymr Nagm Nand Narb Nbat Newa Nkoo Nshu Ogam Olck Onao Orkh Orya Osge Osma Ougr Palm Pauc Perm ' +
  'Phag Phli Phlp Phnx Plrd Prti Rjng Rohg Runr Samr Sarb Saur Sgnw Shaw Shrd Sidd Sidt Sind Sinh Sogd Sogo Sora Soyo ' +
  'Sund Sunu Sylo Syrc Tagb Takr Tale Talu Taml Tang Tavt Tayo Telu Tfng Tglg Thaa Thai Tibt Tirh Tnsa Todr Tols Toto ' +
  'Tutg Ugar Vaii Vith Wara Wcho Xpeo Xsux Yezi Yiii Zanb'
).split(' ')

export const SCRIPTS: readonly string[] = SCRIPT_CODES

const EXTENSIONS = SCRIPT_CODES.map((code) => [code, new RegExp(`\\p{scx=${code}}`, 'u')] as const)

// TR39's augmentation: the scripts written together in Japanese (Jpan), Korean (Kore) and
// Chinese with Bopomofo (Hanb) count as one.
const AUGMENT: Record<string, readonly string[]> = { Hani: ['Jpan', 'Kore', 'Hanb'], Hira: ['Jpan'], Kana: ['Jpan'], Hang: ['Kore'], Bopo: ['Hanb'] }

/** The scripts a character may belong to; null: any (Common or Inherited: digits, spaces, marks). */
function scriptsOf(char: string): Set<string> | null {
  if (char < '\u0080') return /[A-Za-z]/.test(char) ? new Set(['Latn']) : null
  const found = new Set<string>()
  for (const [code, re] of EXTENSIONS) {
    if (!re.test(char)) continue
    found.add(code)
    for (const extra of AUGMENT[code] ?? []) found.add(extra)
  }
  // A character of a script newer than this list is a script of its own.
  if (found.size === 0 && !/[\p{scx=Zyyy}\p{scx=Zinh}]/u.test(char)) found.add(`U+${char.codePointAt(0)!.toString(16)}`)
  return found.size > 0 ? found : null
}

/** The scripts every character of `text` may belong to (null: no character limits it). */
function resolvedScripts(text: string): Set<string> | null {
  const sets = [...text].map(scriptsOf).filter((s): s is Set<string> => s !== null)
  if (sets.length === 0) return null
  return sets.reduce((common, scripts) => new Set([...common].filter((s) => scripts.has(s))))
}

/**
 * True when `text` mixes scripts beyond what TR39's "highly restrictive" level allows: one script
 * (plus Common and Inherited characters), or Latin with Han and Hiragana/Katakana, Han and Hangul,
 * or Han and Bopomofo. `Аlice` (Cyrillic А, Latin lice) is mixed; `山田 Taro` is not.
 */
export function isMixedScript(text: string): boolean {
  const all = resolvedScripts(text)
  if (all === null || all.size > 0) return false
  const nonLatin = resolvedScripts([...text].filter((c) => !scriptsOf(c)?.has('Latn')).join(''))
  return !(nonLatin !== null && ['Jpan', 'Kore', 'Hanb'].some((s) => nonLatin.has(s)))
}
