import json, numpy as np
from PIL import Image
D='/work/shared/data/'
def load(s):
    m=json.load(open(D+s+'/manifest.json'))
    return [(np.asarray(Image.open(D+s+'/'+it['image']).convert('RGB')), it['organ']) for it in m['items']]
import os, pickle
if os.path.exists('/tmp/sim/data.pkl'):
    A,P=pickle.load(open('/tmp/sim/data.pkl','rb'))
else:
    A=load('nuinsseg-dev'); P=load('nuinsseg-train'); pickle.dump((A,P),open('/tmp/sim/data.pkl','wb'))
def chist(rgb,b=8):
    q=(rgb.astype(int)*b)//256
    idx=(q[...,0]*b+q[...,1])*b+q[...,2]
    h=np.bincount(idx.ravel(),minlength=b**3).astype(float); h/=h.sum(); return np.sqrt(h)
def gray(rgb): return rgb.astype(float)@[0.299,0.587,0.114]
def lbp(g, r=1):
    # 8 neighbours at distance r (square), rotation-invariant uniform-ish: count of bits set + uniformity
    h,w=g.shape; c=g[r:h-r,r:w-r]
    offs=[(-r,-r),(-r,0),(-r,r),(0,r),(r,r),(r,0),(r,-r),(0,-r)]
    bits=[(g[r+dy:h-r+dy, r+dx:w-r+dx]>=c).astype(int) for dy,dx in offs]
    n=sum(bits)
    trans=sum((bits[i]!=bits[(i+1)%8]).astype(int) for i in range(8))
    code=np.where(trans<=2, n, 9)
    hh=np.bincount(code.ravel(),minlength=10).astype(float); hh/=hh.sum(); return np.sqrt(hh)
def down(rgb,f):
    im=Image.fromarray(rgb); return np.asarray(im.resize((rgb.shape[1]//f, rgb.shape[0]//f), Image.BILINEAR))
def tex(rgb):
    out=[]
    for f in (1,2,4):
        g=gray(down(rgb,f) if f>1 else rgb)
        for r in (1,2):
            out.append(lbp(g,r))
    return np.concatenate(out)
def hed(rgb):
    od=-np.log((rgb.astype(float)+1)/256)
    M=np.array([[0.65,0.70,0.29],[0.07,0.99,0.11],[0.27,0.57,0.78]])
    M=M/np.linalg.norm(M,axis=1,keepdims=True)
    c=od.reshape(-1,3)@np.linalg.pinv(M)
    H,E=c[:,0],c[:,1]
    hh,_,_=np.histogram2d(np.clip(H,0,2.5),np.clip(E,0,1.5),bins=[12,12],range=[[0,2.5],[0,1.5]])
    hh=hh.ravel(); hh/=hh.sum(); return np.sqrt(hh)
def grad(rgb):
    g=gray(down(rgb,2))
    gy,gx=np.gradient(g); mag=np.hypot(gx,gy)
    hh,_=np.histogram(np.log1p(mag),bins=16,range=(0,5)); hh=hh.astype(float)/hh.sum()
    return np.sqrt(hh)
def unit(v): n=np.linalg.norm(v); return v/n if n>0 else v
def evalp(F_a,F_p,la,lp,k=10):
    Fa=np.array([unit(f) for f in F_a]); Fp=np.array([unit(f) for f in F_p])
    S=Fa@Fp.T; tot=0;n=0
    lp=np.array(lp)
    for i,l in enumerate(la):
        if (lp==l).sum()==0: continue
        top=np.argsort(-S[i],kind='stable')[:k]; tot+=(lp[top]==l).mean(); n+=1
    return tot/n
la=[l for _,l in A]; lp=[l for _,l in P]
feats={}
for name,fn in [('chist',chist),('tex',tex),('hed',hed),('grad',grad)]:
    feats[name]=([fn(x) for x,_ in A],[fn(x) for x,_ in P])
    print(name, round(evalp(*feats[name],la,lp),3), flush=True)
def std(fa,fp):
    X=np.array(fa+fp); mu=X.mean(0); sd=X.std(0)+1e-9
    return list((np.array(fa)-mu)/sd), list((np.array(fp)-mu)/sd)
def combo(names, weights, standardize=True):
    fa=[];fp=[]
    for nm,w in zip(names,weights):
        a,p=feats[nm]
        if standardize: a,p=std(a,p); 
        a=[w*unit(x) for x in a]; p=[w*unit(x) for x in p]
        fa.append(a); fp.append(p)
    return [np.concatenate(x) for x in zip(*fa)], [np.concatenate(x) for x in zip(*fp)]
for names in [('chist','tex'),('chist','hed'),('chist','tex','hed'),('chist','tex','hed','grad'),('hed','tex')]:
    for s in (False,True):
        print(names,'std' if s else 'raw', round(evalp(*combo(names,[1]*len(names),s),la,lp),3), flush=True)
