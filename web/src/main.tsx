import { StrictMode, useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import { api, setCsrf } from "./api";
import type { User } from "./generated/protocol";
import { Account, Admin, type Enrolment } from "./pages/Admin";
import { Messages } from "./messaging/Messages";
import { Home } from "./pages/Home";
import { Join } from "./pages/Join";
import { ChoosePassword, RotateFromWarning } from "./pages/Links";
import { Setup } from "./pages/Setup";
import { SignIn } from "./pages/SignIn";
import { SignUp } from "./pages/SignUp";
import "./styles.css";

/// The app's pages by path; the server answers every page path with this app.
function App() {
  const [path, setPath] = useState(location.pathname);
  const [user, setUser] = useState<User | null | undefined>(undefined);
  // The organisation requires a second factor this session lacks: the
  // account page says so until it is done.
  const [mustEnrol, setMustEnrol] = useState<Enrolment>("none");
  // A fresh server (no organisation yet) shows its setup page to everyone
  // not signed in.
  const [setupRequired, setSetupRequired] = useState(false);

  useEffect(() => {
    // A new tab has the session cookie but not the CSRF token: /me gives both.
    api.me().then(
      (me) => {
        setCsrf(me.csrf_token);
        setMustEnrol(me.two_factor_enrollment_required ? "enrol" : "none");
        setUser(me.user);
      },
      async () => {
        const status = await api.setupStatus().catch(() => ({ setup_required: false }));
        setSetupRequired(status.setup_required);
        setUser(null);
      },
    );
    const onPop = () => setPath(location.pathname);
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  // A page opened from inside the app takes the focus on its heading, as a
  // page load puts a screen reader at the top of the new page.
  const firstPath = useRef(true);
  useEffect(() => {
    if (firstPath.current) {
      firstPath.current = false;
      return;
    }
    const heading = document.querySelector<HTMLElement>("main h1");
    if (heading && !heading.contains(document.activeElement)) {
      heading.tabIndex = -1;
      heading.focus();
    }
  }, [path]);
  const navigate = (to: string) => {
    history.pushState(null, "", to);
    setPath(to);
  };
  const signOut = async () => {
    await api.logout().catch(() => undefined);
    setCsrf(null);
    setMustEnrol("none");
    setUser(null);
    navigate("/");
  };

  // A factor was just enrolled. Where the organisation requires a passkey
  // sign-in, a session signed in with the password still falls short after
  // adding one: the server says whether this one does.
  const enrolled = () =>
    api.me().then(
      (me) => setMustEnrol(me.two_factor_enrollment_required ? "sign-in-again" : "none"),
      () => setMustEnrol("none"),
    );

  if (user === undefined) return <main className="center">Loading…</main>;
  // Links from emails work whether or not someone is signed in here.
  if (path === "/reset") return <ChoosePassword done={() => { setUser(null); navigate("/"); }} />;
  if (path === "/rotate") return <RotateFromWarning />;
  if (!user && setupRequired) {
    return (
      <Setup
        onSignedIn={(u, next) => {
          setSetupRequired(false);
          setUser(u);
          navigate(next);
        }}
      />
    );
  }
  const join = path.match(/^\/j\/([A-Za-z0-9]+)$/);
  if (join) return <Join linkSecret={join[1]} user={user} navigate={navigate} />;
  if (path === "/join") return <Join linkSecret={null} user={user} navigate={navigate} />;

  const signedIn = (u: User, enrolmentRequired: boolean) => {
    setMustEnrol(enrolmentRequired ? "enrol" : "none");
    setUser(u);
    navigate(enrolmentRequired ? "/account" : "/");
  };
  if (!user && path === "/signup") return <SignUp invite={new URLSearchParams(location.search).get("invite")} onSignedIn={signedIn} />;
  if (!user) return <SignIn onSignedIn={signedIn} />;
  const admin = user.role === "owner" || user.role === "admin";
  const conversation = path.match(/^\/messages(?:\/([A-Za-z0-9-]+))?$/);
  return (
    <>
      <header className="top">
        <nav aria-label="Main">
          <a href="/" onClick={(e) => { e.preventDefault(); navigate("/"); }}>Meetings</a>
          {user.org_id || path.startsWith("/messages") ? (
            <a href="/messages" onClick={(e) => { e.preventDefault(); navigate("/messages"); }}>Messages</a>
          ) : null}
          {admin ? <a href="/admin" onClick={(e) => { e.preventDefault(); navigate("/admin"); }}>Organisation</a> : null}
          <a href="/account" onClick={(e) => { e.preventDefault(); navigate("/account"); }}>Account</a>
        </nav>
        <span>
          {user.display_name} <button onClick={() => void signOut()}>Sign out</button>
        </span>
      </header>
      {conversation ? (
        <Messages user={user} navigate={navigate} initial={conversation[1] ?? null} />
      ) : path === "/admin" && admin ? (
        <Admin user={user} />
      ) : path === "/account" ? (
        <Account enrolment={mustEnrol} onEnrolled={enrolled} />
      ) : (
        <Home user={user} navigate={navigate} />
      )}
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
