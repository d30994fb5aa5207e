print("unclog")
