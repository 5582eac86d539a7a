"""Export runs: query Ecolix, render a template, deliver the file."""
