"""Catalogue files (drug, service and lab-test lists): their column layouts, the .csv and .xlsx
readers and row validation. No Flask, no database: `ehr.services.catalogue` stores the result."""
