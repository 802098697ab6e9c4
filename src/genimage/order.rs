//! In which order a config's images are built: each after the images it
//! uses (a partition's `image`, a vfat's `files` and `file { image }`),
//! otherwise in the order written. A cycle is refused, naming an image of
//! it. Pure.

use super::model::ImageKind;
use super::parse::ParseError;
use super::Config;

/// The names of other images of `config` that image `index` uses.
pub fn uses(config: &Config, index: usize) -> Vec<usize> {
    let image = &config.images[index];
    let mut names: Vec<&str> = image
        .partitions
        .iter()
        .filter_map(|p| p.image.as_ref().map(|i| i.value.as_str()))
        .collect();
    if let ImageKind::Vfat(vfat) = &image.kind {
        names.extend(vfat.files.iter().map(|f| f.value.as_str()));
        names.extend(vfat.file_entries.iter().map(|f| f.image.value.as_str()));
    }
    let mut out: Vec<usize> = names
        .into_iter()
        .filter_map(|n| config.images.iter().position(|i| i.file.value == n))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every image index, each after the ones it uses.
pub fn build_order(config: &Config) -> Result<Vec<usize>, ParseError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    let mut marks = vec![Mark::New; config.images.len()];
    let mut order = Vec::with_capacity(config.images.len());
    for root in 0..config.images.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Depth-first, without recursion: (image, its next dependency).
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::Visiting;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps = uses(config, node);
            if let Some(&dep) = deps.get(*next) {
                *next = next.saturating_add(1);
                match marks[dep] {
                    Mark::Done => {}
                    Mark::Visiting => {
                        let image = &config.images[dep];
                        return Err(ParseError::at(
                            &image.file.at,
                            format!(
                                "image '{}' uses itself, through the images it holds (a cycle)",
                                image.file.value
                            ),
                        ));
                    }
                    Mark::New => {
                        marks[dep] = Mark::Visiting;
                        stack.push((dep, 0));
                    }
                }
            } else {
                marks[node] = Mark::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::build_order;
    use crate::genimage::{load_config_str, ParseOptions};

    #[test]
    fn used_images_come_first_and_cycles_are_refused() {
        let cfg = load_config_str(
            "image d.img { hdimage {} partition a { image = \"b.vfat\" } }\n\
             image b.vfat { vfat { files = { \"c.bin\" } } size = 1M }\n\
             image c.bin { file {} }\n",
            "g.cfg",
            &ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(build_order(&cfg).unwrap(), [2, 1, 0]);
        let cyc = load_config_str(
            "image a.img { hdimage {} partition p { image = \"b.img\" } }\n\
             image b.img { hdimage {} partition p { image = \"a.img\" } }\n",
            "g.cfg",
            &ParseOptions::default(),
        )
        .unwrap();
        let err = build_order(&cyc).unwrap_err().to_string();
        assert!(
            err.starts_with("g.cfg:1: image 'a.img' uses itself"),
            "{err}"
        );
    }
}
