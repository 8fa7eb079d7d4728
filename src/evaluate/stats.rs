//! Summary statistics of a sample of signed forward returns (bps).

/// What one sample says: its size, centre, hit rate and how far its mean is
/// from zero in standard errors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub n: u64,
    pub mean_bps: Option<f64>,
    pub median_bps: Option<f64>,
    /// Returns > 0 over all returns; zero returns count as misses and are
    /// also reported apart in `zero`.
    pub hit_rate: Option<f64>,
    pub zero: u64,
    /// Sample standard deviation / √n; needs n ≥ 2.
    pub stderr_bps: Option<f64>,
    /// mean / stderr; `None` when the standard error is undefined or zero.
    pub t_stat: Option<f64>,
}

impl Summary {
    /// Summarises `returns`, which it sorts in place (for the median).
    pub fn of(returns: &mut [f64]) -> Summary {
        let n = returns.len();
        if n == 0 {
            return Summary {
                n: 0,
                mean_bps: None,
                median_bps: None,
                hit_rate: None,
                zero: 0,
                stderr_bps: None,
                t_stat: None,
            };
        }
        let nf = n as f64;
        let mean = returns.iter().sum::<f64>() / nf;
        let hits = returns.iter().filter(|&&r| r > 0.0).count();
        let zero = returns.iter().filter(|&&r| r == 0.0).count();
        returns.sort_unstable_by(f64::total_cmp);
        let median = match (returns.get(n / 2), n % 2) {
            (Some(&hi), 0) => (returns.get(n / 2 - 1).copied().unwrap_or(hi) + hi) / 2.0,
            (Some(&mid), _) => mid,
            (None, _) => mean,
        };
        let stderr = (n >= 2).then(|| {
            let ss: f64 = returns.iter().map(|r| (r - mean) * (r - mean)).sum();
            (ss / (nf - 1.0)).sqrt() / nf.sqrt()
        });
        let t_stat = stderr.filter(|&s| s > 0.0).map(|s| mean / s);
        Summary {
            n: n as u64,
            mean_bps: Some(mean),
            median_bps: Some(median),
            hit_rate: Some(hits as f64 / nf),
            zero: zero as u64,
            stderr_bps: stderr,
            t_stat,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_reports_mean_median_hits_zeros_and_t() {
        let mut r = [2.0, -1.0, 0.0, 3.0];
        let s = Summary::of(&mut r);
        assert_eq!((s.n, s.mean_bps, s.median_bps, s.hit_rate, s.zero), (4, Some(1.0), Some(1.0), Some(0.5), 1));
        // sd = sqrt(((1)² + (−2)² + (−1)² + 2²) / 3) = sqrt(10/3); se = sd / 2.
        let se = (10.0f64 / 3.0).sqrt() / 2.0;
        assert!((s.stderr_bps.unwrap() - se).abs() < 1e-12);
        assert!((s.t_stat.unwrap() - 1.0 / se).abs() < 1e-12);
    }

    #[test]
    fn one_return_has_no_standard_error_and_equal_returns_no_t() {
        let s = Summary::of(&mut [1.5]);
        assert_eq!((s.median_bps, s.stderr_bps, s.t_stat), (Some(1.5), None, None));
        let s = Summary::of(&mut [0.0, 0.0, 0.0]);
        assert_eq!((s.hit_rate, s.zero, s.stderr_bps, s.t_stat), (Some(0.0), 3, Some(0.0), None));
        assert_eq!(Summary::of(&mut []).mean_bps, None);
    }
}
