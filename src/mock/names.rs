//! Name pools and text helpers for the synthetic organisation.

/// Nordic country codes as served in `meta.country`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Country {
    Dk,
    Se,
    No,
    Fi,
    Is,
}

impl Country {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Country::Dk => "DK",
            Country::Se => "SE",
            Country::No => "NO",
            Country::Fi => "FI",
            Country::Is => "IS",
        }
    }

    pub(crate) fn first_names(self) -> &'static [&'static str] {
        match self {
            Country::Dk => DANISH_FIRST,
            Country::Se => SWEDISH_FIRST,
            Country::No => NORWEGIAN_FIRST,
            Country::Fi => FINNISH_FIRST,
            Country::Is => ICELANDIC_FIRST,
        }
    }

    pub(crate) fn last_names(self) -> &'static [&'static str] {
        match self {
            Country::Dk => DANISH_LAST,
            Country::Se => SWEDISH_LAST,
            Country::No => NORWEGIAN_LAST,
            Country::Fi => FINNISH_LAST,
            Country::Is => ICELANDIC_LAST,
        }
    }
}

/// A department: its name, relative headcount weight and baseline probability
/// that a member clicks a phishing link before any training.
pub(crate) struct DepartmentSpec {
    pub(crate) name: &'static str,
    pub(crate) weight: u32,
    pub(crate) click_base: f64,
}

/// The first department is the management team, whose first member is the CEO.
pub(crate) const DEPARTMENTS: &[DepartmentSpec] = &[
    DepartmentSpec {
        name: "Ledelse",
        weight: 3,
        click_base: 0.26,
    },
    DepartmentSpec {
        name: "Salg",
        weight: 16,
        click_base: 0.40,
    },
    DepartmentSpec {
        name: "Kundeservice",
        weight: 14,
        click_base: 0.38,
    },
    DepartmentSpec {
        name: "Produktion",
        weight: 18,
        click_base: 0.34,
    },
    DepartmentSpec {
        name: "Lager & logistik",
        weight: 10,
        click_base: 0.36,
    },
    DepartmentSpec {
        name: "Økonomi",
        weight: 7,
        click_base: 0.27,
    },
    DepartmentSpec {
        name: "HR",
        weight: 4,
        click_base: 0.30,
    },
    DepartmentSpec {
        name: "IT",
        weight: 8,
        click_base: 0.15,
    },
    DepartmentSpec {
        name: "Forskning og udvikling",
        weight: 12,
        click_base: 0.22,
    },
    DepartmentSpec {
        name: "Marketing",
        weight: 8,
        click_base: 0.33,
    },
];

/// A branch office with its country and relative headcount weight.
pub(crate) struct BranchSpec {
    pub(crate) id: u64,
    pub(crate) name: &'static str,
    pub(crate) country: Country,
    pub(crate) weight: u32,
}

/// The first branch is the head office, where the management team sits.
pub(crate) const BRANCHES: &[BranchSpec] = &[
    BranchSpec {
        id: 101,
        name: "København",
        country: Country::Dk,
        weight: 34,
    },
    BranchSpec {
        id: 102,
        name: "Aarhus",
        country: Country::Dk,
        weight: 18,
    },
    BranchSpec {
        id: 103,
        name: "Odense",
        country: Country::Dk,
        weight: 10,
    },
    BranchSpec {
        id: 104,
        name: "Aalborg",
        country: Country::Dk,
        weight: 8,
    },
    BranchSpec {
        id: 201,
        name: "Malmö",
        country: Country::Se,
        weight: 11,
    },
    BranchSpec {
        id: 301,
        name: "Oslo",
        country: Country::No,
        weight: 9,
    },
    BranchSpec {
        id: 302,
        name: "Tromsø",
        country: Country::No,
        weight: 3,
    },
    BranchSpec {
        id: 401,
        name: "Helsinki",
        country: Country::Fi,
        weight: 5,
    },
    BranchSpec {
        id: 501,
        name: "Reykjavík",
        country: Country::Is,
        weight: 2,
    },
];

/// Group names, indexed by the `GROUP_*` constants.
pub(crate) const GROUPS: &[(u64, &str)] = &[
    (7001, "Alle medarbejdere"),
    (7002, "Ledere"),
    (7003, "Nyansatte"),
    (7004, "Fjernarbejde"),
    (7005, "Pilotgruppe"),
];
pub(crate) const GROUP_ALL: usize = 0;
pub(crate) const GROUP_MANAGERS: usize = 1;
pub(crate) const GROUP_NEW_HIRES: usize = 2;
pub(crate) const GROUP_REMOTE: usize = 3;
pub(crate) const GROUP_PILOT: usize = 4;

const DANISH_FIRST: &[&str] = &[
    "Søren",
    "Mette",
    "Jørgen",
    "Anne",
    "Bjørn",
    "Kirsten",
    "Lars",
    "Hanne",
    "Mads",
    "Signe",
    "Rasmus",
    "Karen",
    "Jens",
    "Birthe",
    "Frederik",
    "Ida",
    "Mikkel",
    "Sofie",
    "Jesper",
    "Lærke",
    "Thomas",
    "Åse",
    "Niels",
    "Mathilde",
    "Ørjan",
    "Camilla",
    "Henrik",
    "Line",
    "Kasper",
    "Astrid",
    "Christian",
    "Marianne",
    "Anders",
    "Louise",
    "Martin",
    "Freja",
    "Peter",
    "Tove",
    "Morten",
    "Pernille",
    "Bent",
    "Dorthe",
    "Emil",
    "Cecilie",
    "Jakob",
    "Helle",
    "Torben",
    "Ditte",
];
const DANISH_LAST: &[&str] = &[
    "Jørgensen",
    "Østergaard",
    "Nielsen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Sørensen",
    "Rasmussen",
    "Kjær",
    "Mølgaard",
    "Lærkesen",
    "Ærø-Hansen",
    "Bøgh",
    "Lund",
    "Frøkjær",
    "Søndergaard",
    "Madsen",
    "Kristensen",
    "Olsen",
    "Thomsen",
    "Poulsen",
    "Johansen",
    "Møller",
    "Mortensen",
    "Dahl",
    "Bækgaard",
    "Holm",
    "Vestergaard",
    "Nørgaard",
    "Brødsgaard",
    "Skovgaard",
    "Damgaard",
    "Højgaard",
    "Ravn",
    "Friis",
    "Krogh",
    "Aagaard",
];
const SWEDISH_FIRST: &[&str] = &[
    "Åsa", "Björn", "Märta", "Göran", "Linnéa", "Östen", "Karin", "Erik", "Maja", "Nils", "Agneta",
    "Håkan", "Ingrid", "Pär", "Elin", "Sven", "Åke", "Ebba", "Mårten", "Sofia",
];
const SWEDISH_LAST: &[&str] = &[
    "Ågren",
    "Öberg",
    "Lindström",
    "Åkesson",
    "Sjöberg",
    "Bergström",
    "Karlsson",
    "Johansson",
    "Nyström",
    "Strömberg",
    "Lindqvist",
    "Ekström",
    "Håkansson",
    "Söderberg",
    "Hedén",
    "Åström",
];
const NORWEGIAN_FIRST: &[&str] = &[
    "Øystein", "Åse", "Bjørg", "Håkon", "Solveig", "Ørjan", "Ingvild", "Torstein", "Kåre",
    "Synnøve", "Magnus", "Ragnhild", "Eirik", "Tiril", "Sindre", "Gunnhild",
];
const NORWEGIAN_LAST: &[&str] = &[
    "Haugen",
    "Bråthen",
    "Sæther",
    "Løvås",
    "Kvåle",
    "Østby",
    "Solberg",
    "Bakken",
    "Dæhlie",
    "Kristiansen",
    "Hågensen",
    "Strøm",
    "Nygård",
    "Fjærli",
];
const FINNISH_FIRST: &[&str] = &[
    "Päivi", "Jukka", "Sanna", "Mikko", "Tiina", "Jyrki", "Hanna", "Väinö", "Aino", "Eero",
];
const FINNISH_LAST: &[&str] = &[
    "Häkkinen",
    "Virtanen",
    "Mäkinen",
    "Järvinen",
    "Lehtonen",
    "Kärkkäinen",
    "Nieminen",
    "Hämäläinen",
    "Kyllönen",
    "Räikkönen",
];
const ICELANDIC_FIRST: &[&str] = &[
    "Þóra",
    "Guðrún",
    "Sigurður",
    "Jón",
    "Halldóra",
    "Ólafur",
    "Ásdís",
    "Þórður",
    "Björk",
    "Einar",
];
const ICELANDIC_LAST: &[&str] = &[
    "Þórsdóttir",
    "Jónsson",
    "Guðmundsdóttir",
    "Sigurðsson",
    "Ólafsdóttir",
    "Einarsson",
    "Ásgeirsdóttir",
    "Þorsteinsson",
];

/// Folds a name to lowercase ASCII for an e-mail local part.
///
/// Letters with diacritics lose them ("ø" to "o", "å" to "a"), "æ" becomes
/// "ae", "þ" becomes "th" and "ð" becomes "d". Combining marks (as in NFD
/// text) are dropped, hyphens kept, and any other character removed.
pub(crate) fn ascii_fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for ch in text.chars().flat_map(char::to_lowercase) {
        match ch {
            'a'..='z' | '0'..='9' | '-' => folded.push(ch),
            'æ' => folded.push_str("ae"),
            'þ' => folded.push_str("th"),
            'ð' => folded.push('d'),
            'ß' => folded.push_str("ss"),
            _ => {
                if let Some(base) = strip_diacritic(ch) {
                    folded.push(base);
                }
            }
        }
    }
    folded
}

fn strip_diacritic(ch: char) -> Option<char> {
    let base = match ch {
        'à' | 'á' | 'â' | 'ä' | 'å' | 'ã' => 'a',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' | 'ø' | 'õ' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        'ñ' => 'n',
        'ç' => 'c',
        _ => return None,
    };
    Some(base)
}

/// Rewrites the precomposed letters used in the name pools into their
/// canonical decomposition (NFD), such as "å" into "a" + U+030A.
///
/// Letters without a decomposition ("ø", "æ", "þ", "ð") stay as they are,
/// exactly as in Unicode NFD.
pub(crate) fn to_nfd(text: &str) -> String {
    let mut decomposed = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match decompose(ch) {
            Some((base, mark)) => {
                decomposed.push(base);
                decomposed.push(mark);
            }
            None => decomposed.push(ch),
        }
    }
    decomposed
}

fn decompose(ch: char) -> Option<(char, char)> {
    const ACUTE: char = '\u{0301}';
    const DIAERESIS: char = '\u{0308}';
    const RING: char = '\u{030A}';
    let pair = match ch {
        'å' => ('a', RING),
        'Å' => ('A', RING),
        'ä' => ('a', DIAERESIS),
        'Ä' => ('A', DIAERESIS),
        'ö' => ('o', DIAERESIS),
        'Ö' => ('O', DIAERESIS),
        'ü' => ('u', DIAERESIS),
        'é' => ('e', ACUTE),
        'É' => ('E', ACUTE),
        'á' => ('a', ACUTE),
        'Á' => ('A', ACUTE),
        'í' => ('i', ACUTE),
        'Í' => ('I', ACUTE),
        'ó' => ('o', ACUTE),
        'Ó' => ('O', ACUTE),
        'ú' => ('u', ACUTE),
        'ý' => ('y', ACUTE),
        _ => return None,
    };
    Some(pair)
}

/// Legal-form words that are left out of the e-mail domain.
const LEGAL_FORMS: &[&str] = &[
    "a/s", "aps", "ab", "as", "asa", "oy", "oyj", "hf", "ehf", "i/s",
];

/// Derives an e-mail domain from a company name: "Nordlys Energi A/S"
/// becomes "nordlysenergi.dk".
pub(crate) fn company_domain(company_name: &str) -> String {
    let mut label = String::new();
    for word in company_name.split_whitespace() {
        if LEGAL_FORMS.contains(&word.to_lowercase().as_str()) {
            continue;
        }
        label.push_str(&ascii_fold(word).replace('-', ""));
    }
    if label.is_empty() {
        label.push_str("company");
    }
    format!("{label}.dk")
}

/// Misspellings of a department name as they turn up in hand-entered data:
/// stray spaces, a doubled inner space or a change of case.
pub(crate) fn odd_spelling(name: &str, variant: u64) -> String {
    match variant % 4 {
        0 => format!("{name} "),
        1 => format!(" {}", name.to_lowercase()),
        2 => name.to_uppercase(),
        _ => match name.split_once(' ') {
            Some((head, tail)) => format!("{head}  {tail}"),
            None => format!("{name}\t"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_handles_nordic_letters() {
        assert_eq!(ascii_fold("Søren"), "soren");
        assert_eq!(ascii_fold("Østergaard"), "ostergaard");
        assert_eq!(ascii_fold("Ærø-Hansen"), "aero-hansen");
        assert_eq!(ascii_fold("Þórsdóttir"), "thorsdottir");
        assert_eq!(ascii_fold("Guðrún"), "gudrun");
        assert_eq!(ascii_fold("Häkkinen"), "hakkinen");
    }

    #[test]
    fn fold_drops_combining_marks() {
        assert_eq!(ascii_fold(&to_nfd("Åse Ågren")), "aseagren");
    }

    #[test]
    fn nfd_decomposes_ring_and_keeps_slashed_o() {
        assert_eq!(to_nfd("Åse"), "A\u{030A}se");
        assert_eq!(to_nfd("Søren"), "Søren");
        assert_ne!(to_nfd("Björk"), "Björk");
    }

    #[test]
    fn domain_skips_legal_form() {
        assert_eq!(company_domain("Nordlys Energi A/S"), "nordlysenergi.dk");
        assert_eq!(company_domain("Ærø Fiskeri ApS"), "aerofiskeri.dk");
        assert_eq!(company_domain("A/S"), "company.dk");
    }

    #[test]
    fn odd_spelling_differs_from_clean() {
        for variant in 0..4 {
            let spelled = odd_spelling("Lager & logistik", variant);
            assert_ne!(spelled, "Lager & logistik");
            assert_eq!(spelled.trim().to_lowercase().split_whitespace().count(), 3);
        }
    }
}
