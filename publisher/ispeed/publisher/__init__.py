"""The static site: pages, charts and downloads rendered from the monthly statistics, and the nightly publish job."""
